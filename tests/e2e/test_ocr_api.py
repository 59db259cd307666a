"""POST /v1/ocr/id-card through the real app: a drawn card in, masked reading and cross-check out.

OCR reads no database, so these run on SQLite only (one app for the module, one engine per
process). Needs a Chinese font to draw the card: skips locally without one, fails in CI.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from mobilend.api.auth import create_credential
from mobilend.app import create_app
from mobilend.db.migrate import upgrade
from mobilend.db.session import session_factory, unit_of_work
from mobilend.settings import Settings
from tests.ocr_cards import Person, degrade, draw_card, random_person, require_cjk_font

pytestmark = pytest.mark.integration
PATH = "/v1/ocr/id-card"


@dataclass
class OcrApi:
    client: TestClient
    officer: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcrApi]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ocr') / 'mobilend.db'}"
    upgrade(url)
    app = create_app(Settings(database_url=url))
    with unit_of_work(session_factory(app.state.engine)) as session:
        _, officer = create_credential(session, name="test-officer", role="officer")
        _, viewer = create_credential(session, name="test-viewer", role="viewer")
    with TestClient(app) as client:
        yield OcrApi(
            client, {"Authorization": f"Bearer {officer}"}, {"Authorization": f"Bearer {viewer}"}
        )
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def card() -> tuple[Person, str]:
    font = require_cjk_font()
    rng = random.Random(77)
    person = random_person(rng)
    data = degrade(draw_card(person, font_path=font), rng=rng, angle=1.5, jpeg_quality=80)
    return person, base64.b64encode(data).decode()


def test_reading_is_masked_and_cross_checked(api: OcrApi, card: tuple[Person, str]) -> None:
    person, image = card
    typed = {"name": person.name, "id_number": person.id_number, "address": person.address}
    r = api.client.post(PATH, json={"image_base64": image, "typed": typed}, headers=api.officer)
    assert r.status_code == 200, r.text
    body = r.json()
    reading = body["reading"]
    assert reading["name"] == person.name
    n = person.id_number
    assert reading["id_number_masked"] == n[:6] + "********" + n[-4:]
    assert n not in r.text  # the full number never leaves
    assert reading["id_number_valid"] is True
    assert reading["birth_date"] == person.birth_date.isoformat()
    assert set(reading["confidence"]) == {
        "name",
        "sex",
        "ethnicity",
        "birth_date",
        "address",
        "id_number",
    }
    assert body["cross_check"]["fields"] == {
        "name": "match",
        "id_number": "match",
        "address": "match",
    }
    assert body["cross_check"]["mismatch"] is False

    # Someone else's ID number typed over the card, as a data URL without address.
    other = "11010519491231002X"
    typed = {"name": person.name, "id_number": other}
    data_url = "data:image/jpeg;base64," + image
    r = api.client.post(PATH, json={"image_base64": data_url, "typed": typed}, headers=api.officer)
    assert r.status_code == 200, r.text
    check = r.json()["cross_check"]
    assert check["fields"] == {"name": "match", "id_number": "mismatch", "address": "not_given"}
    assert check["mismatch"] is True


def test_bad_input_is_a_problem_naming_the_field(api: OcrApi) -> None:
    typed = {"name": "张三", "id_number": "11010519491231002X"}
    r = api.client.post(
        PATH, json={"image_base64": "not base64!", "typed": typed}, headers=api.officer
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.json()["field"], r.json()["rule"]) == ("image_base64", "base64")
    not_image = base64.b64encode(b"GIF89a but not really").decode()
    r = api.client.post(PATH, json={"image_base64": not_image, "typed": typed}, headers=api.officer)
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["rule"]) == ("image_base64", "image-format")
    r = api.client.post(PATH, json={"image_base64": not_image}, headers=api.officer)
    assert r.status_code == 422 and r.json()["field"] == "typed"


def test_permission_borrowers_write_is_required(api: OcrApi) -> None:
    body = {"image_base64": "AAAA", "typed": {"name": "张三", "id_number": "1"}}
    assert api.client.post(PATH, json=body).status_code == 401
    assert api.client.post(PATH, json=body, headers=api.viewer).status_code == 403
