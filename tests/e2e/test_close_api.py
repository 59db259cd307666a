"""The daily close over HTTP: start, follow, refusals as problems naming field and rule."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.integration.close_book import START, book
from tests.integration.helpers import Db


@pytest.fixture
def db_url(isolated_db_url: str) -> str:  # a book of its own: a close covers every loan
    return isolated_db_url


@pytest.fixture
def booked(api: Api, db_url: str, tmp_path: Path) -> Api:
    app: Any = api.client.app
    app.state.settings = app.state.settings.model_copy(update={"data_dir": tmp_path / "data"})
    book(Db(db_url), random.Random(5), count=8)
    api.set_today(2024, 1, 10)
    return api


def test_close_start_follow_and_refusals(booked: Api) -> None:
    api = booked
    day = START.isoformat()
    assert (
        api.client.post(
            "/v1/close/runs", json={"business_date": day}, headers=api.viewer
        ).status_code
        == 403
    )
    assert api.client.get(f"/v1/close/runs/{day}", headers=api.viewer).status_code == 404

    r = api.client.post(
        "/v1/close/runs", json={"business_date": day, "in_process": True}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["business_date"] == day
    assert done["loans"] == done["loans_done"] == 8
    assert done["steps"] == {
        "collateral": "done",
        "devices": "done",
        "collections": "done",
        "log": "done",
    }
    assert api.client.get(f"/v1/close/runs/{day}", headers=api.viewer).json() == done

    # the same date again: nothing to do, the same answer
    again = api.client.post(
        "/v1/close/runs", json={"business_date": day, "in_process": True}, headers=api.admin
    )
    assert again.status_code == 200 and again.json() == done

    # a gap is refused, naming the rule; so is a date before the last close and a future one
    skip = (START + timedelta(days=2)).isoformat()
    r = api.client.post("/v1/close/runs", json={"business_date": skip}, headers=api.admin)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "business_date" and "no-skip" in r.json()["detail"]
    before = (START - timedelta(days=1)).isoformat()
    r = api.client.post("/v1/close/runs", json={"business_date": before}, headers=api.admin)
    assert r.status_code == 409 and "final" in r.json()["detail"]
    r = api.client.post("/v1/close/runs", json={"business_date": "2024-01-11"}, headers=api.admin)
    assert r.status_code == 422 and r.json()["rule"] == "not-future"
    r = api.client.post("/v1/close/runs", json={"business_date": "2024-13-01"}, headers=api.admin)
    assert r.status_code == 422

    # with no date, the next one is closed
    r = api.client.post("/v1/close/runs", json={"in_process": True}, headers=api.admin)
    assert r.status_code == 200 and r.json()["business_date"] == (START + timedelta(1)).isoformat()
    runs = api.client.get("/v1/close/runs", headers=api.viewer).json()
    assert [run["business_date"] for run in runs] == [
        (START + timedelta(days=1)).isoformat(),
        day,
    ]
    assert all(run["requested_by"] == "api:test-admin" for run in runs)
