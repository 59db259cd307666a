"""ID-card OCR: parsing made-up OCR lines (no engine), image checks, cross-check, and reads of
synthetic cards drawn by tests/ocr_cards.py through the real offline engine.

The engine tests share one engine per process (origination/ocr.py caches it). They need a
Chinese font to draw the cards: without one they skip locally and fail in CI.
"""

from __future__ import annotations

import io
import math
import random
import time
from datetime import date

import pytest
from PIL import Image, ImageDraw, ImageFont
from stdnum.cn import ric
from tests.ocr_cards import degrade, draw_card, png_bytes, random_person, require_cjk_font

from mobilend.core.errors import ValidationFailed
from mobilend.origination import ocr
from mobilend.origination.ocr import OcrLine, cross_check, parse_lines, read_id_card

# 11010519491231002X is stdnum's documented example of a valid number.
VALID_ID = "11010519491231002X"


def line(text: str, x0: float, y0: float, x1: float, y1: float, score: float = 0.99) -> OcrLine:
    return OcrLine(text, score, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def rotated(lines: list[OcrLine], degrees: float) -> list[OcrLine]:
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    return [
        OcrLine(ln.text, ln.score, tuple((x * c - y * s, x * s + y * c) for x, y in ln.box))
        for ln in lines
    ]


def card_lines(id_number: str = VALID_ID) -> list[OcrLine]:
    """What the engine returns for a card: labels as their own boxes or merged with values."""
    return [
        line("姓名", 58, 62, 138, 93),
        line("韩东", 162, 56, 237, 93, 0.97),
        line("性别女", 55, 126, 205, 164),
        line("民族汉", 275, 126, 414, 164),
        line("出生", 59, 202, 130, 233),
        line("1949年12月31日", 167, 200, 462, 230),
        line("住址", 58, 271, 129, 303),
        line("北京市东城区新华街道2", 172, 270, 507, 299, 0.95),
        line("42号", 166, 313, 239, 349, 0.9),
        line("公民身份号码", 60, 452, 216, 483),
        line(id_number, 292, 452, 667, 481, 0.98),
    ]


# ------------------------------------------------------------------ parsing (no engine)


def test_parse_reads_every_field_by_label_and_geometry() -> None:
    r = parse_lines(card_lines())
    assert r.name == "韩东"
    assert r.sex == "女"
    assert r.ethnicity == "汉"
    assert r.birth_date == date(1949, 12, 31)
    assert r.address == "北京市东城区新华街道242号"  # two lines joined
    assert r.id_number == VALID_ID and r.id_number_valid and not r.id_number_repaired
    assert r.id_number_masked == "110105********002X"
    assert r.confidence["name"] == 0.97
    assert r.confidence["address"] == 0.9  # the weakest of its lines
    assert r.confidence["id_number"] == 0.98
    assert r.warnings == ()


def test_parse_handles_merged_rows_spaces_and_full_width_text() -> None:
    lines = [
        line("姓 名 韩东", 55, 55, 240, 97),
        line("性别女 民族 土家", 55, 126, 420, 164),
        line("出生１９４９年１２月３１日", 55, 200, 470, 233),
        line("住址北京市东城区新华街道", 55, 270, 507, 303),
        line("242号", 166, 313, 260, 349),
        line("公民身份号码 11010519491231002x", 55, 452, 680, 483),
    ]
    r = parse_lines(lines)
    assert (r.name, r.sex, r.ethnicity) == ("韩东", "女", "土家")
    assert r.birth_date == date(1949, 12, 31)
    assert r.address == "北京市东城区新华街道242号"
    assert r.id_number == VALID_ID


@pytest.mark.parametrize("degrees", [-4.0, -1.5, 2.5, 4.0])
def test_parse_deskews_rotated_boxes(degrees: float) -> None:
    r = parse_lines(rotated(card_lines(), degrees))
    assert (r.name, r.address, r.id_number) == ("韩东", "北京市东城区新华街道242号", VALID_ID)


def test_upside_down_and_sideways_layouts_are_recognised() -> None:
    lines = card_lines()
    assert not ocr._upside_down(lines) and not ocr._mostly_vertical(lines)
    turned = rotated(lines, 180)  # corners re-ordered from the top-left, as the engine does
    turned = [OcrLine(ln.text, ln.score, ln.box[2:] + ln.box[:2]) for ln in turned]
    assert ocr._upside_down(turned)
    sideways = [OcrLine(ln.text, ln.score, ln.box[1:] + ln.box[:1]) for ln in rotated(lines, 90)]
    assert ocr._mostly_vertical(sideways)


def test_parse_snaps_a_misread_ethnic_group_to_the_one_group_it_can_be() -> None:
    lines = card_lines()
    lines[3] = line("民族士家", 275, 126, 440, 164)  # 士 for 土
    assert parse_lines(lines).ethnicity == "土家"


def test_one_confusable_digit_is_repaired_when_only_one_fix_is_valid() -> None:
    misread = "11610519491231002X"  # position 3: 0 read as 6
    assert not ric.is_valid(misread)
    r = parse_lines(card_lines(misread))
    assert r.id_number == VALID_ID
    assert r.id_number_valid and r.id_number_repaired
    assert r.confidence["id_number"] == 0.49  # halved


def test_an_ambiguous_misread_is_left_invalid() -> None:
    misread = "11010519491231802X"  # position 15: 0 read as 8
    # Two valid numbers are one confusable substitution away: no repair is safe.
    assert ric.is_valid("11010519491231002X") and ric.is_valid("11010510491231802X")
    r = parse_lines(card_lines(misread))
    assert r.id_number == misread
    assert not r.id_number_valid and not r.id_number_repaired


def test_printed_sex_and_birth_date_are_checked_against_the_number() -> None:
    lines = card_lines()
    lines[2] = line("性别男", 55, 126, 205, 164)  # 17th digit 2 is even: female
    lines[5] = line("1949年12月30日", 167, 200, 462, 230)
    r = parse_lines(lines)
    assert r.warnings == ("birth-date-differs-from-id-number", "sex-differs-from-id-number")


def test_back_side_and_text_without_card_labels_are_rejected() -> None:
    back = [
        line("中华人民共和国", 300, 60, 700, 110),
        line("签发机关北京市公安局", 200, 380, 700, 420),
    ]
    with pytest.raises(ValidationFailed) as info:
        parse_lines(back)
    assert (info.value.field, info.value.rule) == ("image", "id-card-front")
    assert "back side" in info.value.detail
    with pytest.raises(ValidationFailed) as info:
        parse_lines([line("hello", 10, 10, 100, 40)])
    assert info.value.rule == "id-card-front"
    with pytest.raises(ValidationFailed):
        parse_lines([])


# ------------------------------------------------------------------ image checks


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (240, 240, 240)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "image-required"),
        (b"%PDF-1.7 not an image", "image-format"),
        (_png(300, 200), "image-too-small"),
        (_png(856, 200), "image-too-small"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image-format"),  # truncated PNG
    ],
)
def test_bad_images_are_rejected_before_ocr(data: bytes, rule: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        ocr.load_image(data)
    assert (info.value.field, info.value.rule) == ("image", rule)


def test_images_are_accepted_portrait_and_scaled_down_when_large() -> None:
    assert ocr.load_image(_png(540, 856)).shape == (856, 540, 3)
    assert ocr.load_image(_png(2560, 1600)).shape == (800, 1280, 3)


# ------------------------------------------------------------------ cross-check


def _reading(**changes: object) -> ocr.IdCardReading:
    r = parse_lines(card_lines())
    return ocr.IdCardReading(**{**r.__dict__, **changes})  # type: ignore[arg-type]


def test_cross_check_matches_after_normalization() -> None:
    c = cross_check(
        _reading(),
        name=" 韩 东 ",
        id_number="１１０１０５１９４９１２３１００２x",  # full-width digits, lower-case x
        address="北京市东城区新华街道 242 号",
    )
    assert c.fields == {"name": "match", "id_number": "match", "address": "match"}
    assert c.address_similarity == 1.0 and not c.mismatch


def test_cross_check_address_threshold() -> None:
    # Card: 北京市东城区新华街道242号, 14 characters. One of 14 differs: 2*13/28 = 0.929.
    one_off = cross_check(
        _reading(), name="韩东", id_number=VALID_ID, address="北京市东城区新化街道242号"
    )
    assert one_off.address == "match" and one_off.address_similarity == pytest.approx(
        26 / 28, abs=1e-4
    )
    # Another district and street: only 北京市, 区 and 号 in common.
    other = cross_check(
        _reading(), name="韩东", id_number=VALID_ID, address="北京市朝阳区建国路88号"
    )
    assert other.address == "mismatch" and other.mismatch
    assert other.address_similarity is not None and other.address_similarity < 0.85


def test_cross_check_mismatch_unread_and_not_given() -> None:
    c = cross_check(_reading(), name="韩冬", id_number=VALID_ID)
    assert c.fields == {"name": "mismatch", "id_number": "match", "address": "not_given"}
    assert c.mismatch and c.address_similarity is None
    c = cross_check(_reading(name=None), name="韩东", id_number=VALID_ID)
    assert c.name == "unread" and c.mismatch
    c = cross_check(_reading(), name="韩东", id_number="110105194912310038")
    assert c.id_number == "mismatch" and c.mismatch
    invalid = _reading(id_number="11010519491231802X", id_number_valid=False)
    assert cross_check(invalid, name="韩东", id_number="11010519491231802X").id_number == "mismatch"


# ------------------------------------------------------------------ the engine on drawn cards


@pytest.fixture(scope="module")
def font() -> str:
    return require_cjk_font()


def test_clean_card_reads_exactly(font: str) -> None:
    person = random_person(random.Random(2024))
    r = read_id_card(png_bytes(draw_card(person, font_path=font)))
    assert r.name == person.name
    assert r.id_number == person.id_number and r.id_number_valid
    assert r.address == person.address
    assert (r.sex, r.ethnicity, r.birth_date) == (person.sex, person.ethnicity, person.birth_date)
    assert all(r.confidence[f] > 0.9 for f in ocr.FIELDS), r.confidence
    check = cross_check(r, name=person.name, id_number=person.id_number, address=person.address)
    assert not check.mismatch


def test_rotated_noisy_jpeg_card_reads(font: str) -> None:
    rng = random.Random(99)
    person = random_person(rng)
    data = degrade(
        draw_card(person, font_path=font, seed=5), rng=rng, angle=2.5, noise=8, jpeg_quality=60
    )
    r = read_id_card(data)
    assert r.name == person.name
    assert r.id_number == person.id_number
    check = cross_check(r, name=person.name, id_number=person.id_number, address=person.address)
    assert check.address == "match", (r.address, person.address)


def test_sideways_card_is_turned_before_reading(font: str) -> None:
    rng = random.Random(5)
    person = random_person(rng)
    r = read_id_card(degrade(draw_card(person, font_path=font), rng=rng, angle=-90))
    assert (r.name, r.id_number, r.address) == (person.name, person.id_number, person.address)


def test_back_side_image_is_rejected(font: str) -> None:
    img = Image.new("RGB", (856, 540), (236, 240, 236))
    draw = ImageDraw.Draw(img)
    draw.text((250, 60), "中华人民共和国", font=ImageFont.truetype(font, 48), fill=(20, 20, 20))
    draw.text((240, 140), "居民身份证", font=ImageFont.truetype(font, 56), fill=(20, 20, 20))
    small = ImageFont.truetype(font, 28)
    draw.text((150, 380), "签发机关  北京市公安局东城分局", font=small, fill=(20, 20, 20))
    draw.text((150, 440), "有效期限  2015.01.01-2035.01.01", font=small, fill=(20, 20, 20))
    with pytest.raises(ValidationFailed) as info:
        read_id_card(png_bytes(img))
    assert (info.value.field, info.value.rule) == ("image", "id-card-front")


ACCURACY_CARDS = 20
# Floors below what was measured (docs/ocr.md); a drop below them is a regression.
FLOORS = {"name": 0.90, "id_number": 0.90, "address": 0.85}


def test_accuracy_over_generated_cards(font: str) -> None:
    """20 fictional people on cards rotated up to 3 degrees, with noise, some blur, some JPEG."""
    rng = random.Random(20250115)
    people, images = [], []
    for i in range(ACCURACY_CARDS):
        person = random_person(rng)
        people.append(person)
        images.append(
            degrade(
                draw_card(person, font_path=font, seed=i),
                rng=rng,
                angle=rng.uniform(-3, 3),
                noise=rng.uniform(0, 12),
                blur=rng.choice([0.0, 0.0, 0.8, 1.2]),
                jpeg_quality=rng.choice([None, 50, 70, 85]),
            )
        )
    ocr.get_engine()
    ocr.run_ocr(ocr.load_image(images[0]))  # warm-up: first inference allocates buffers
    hits = dict.fromkeys(("name", "id_number", "address", "address_exact", "other"), 0)
    elapsed = []
    for person, data in zip(people, images, strict=True):
        started = time.perf_counter()
        try:
            r = read_id_card(data)
        except ValidationFailed:
            continue
        elapsed.append(time.perf_counter() - started)
        check = cross_check(r, name=person.name, id_number=person.id_number, address=person.address)
        hits["name"] += r.name == person.name
        hits["id_number"] += r.id_number == person.id_number
        hits["address"] += check.address == "match"
        hits["address_exact"] += r.address == person.address
        hits["other"] += (r.sex, r.ethnicity, r.birth_date) == (
            person.sex,
            person.ethnicity,
            person.birth_date,
        )
    rates = {k: v / ACCURACY_CARDS for k, v in hits.items()}
    print(
        f"\nOCR accuracy over {ACCURACY_CARDS} synthetic cards: "
        + ", ".join(f"{k} {v:.0%}" for k, v in rates.items())
        + f"; engine load {ocr.engine_load_seconds() or 0:.2f} s"
        + f"; per card mean {sum(elapsed) / max(len(elapsed), 1):.2f} s, "
        + f"max {max(elapsed, default=0):.2f} s"
    )
    for fname, floor in FLOORS.items():
        assert rates[fname] >= floor, (fname, rates)
