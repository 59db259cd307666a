"""Device catalog: IMEI and TAC checks, catalog CSV parsing, the seed catalog."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mobilend.collateral.catalog import (
    DeviceModel,
    Variant,
    check_imei_matches_model,
    match_tac,
    parse_catalog_csv,
    seed_catalog,
    tac_of,
    validate_imei,
)
from mobilend.core.errors import ValidationFailed

D = Decimal

# 490154203237518 is the worked IMEI example on Wikipedia. Luhn by hand over the payload
# 49015420323751, from the right, doubling every other digit starting with the last one:
#   doubled 1,7,2,0,4,1,9 -> 2,14,4,0,8,2,18 -> digit sums 2+5+4+0+8+2+9 = 30
#   kept    5,3,3,2,5,0,4 -> 22;  total 52 -> check digit (10 - 2) = 8.
WIKI_IMEI = "490154203237518"
# An iPhone 13 IMEI on TAC 35104463 (Osmocom), serial 000001. Payload 35104463000001:
#   doubled 1,0,0,3,4,0,5 -> 2,0,0,6,8,0,10 -> 2+0+0+6+8+0+1 = 17
#   kept    0,0,0,6,4,1,3 -> 14;  total 31 -> check digit 9.
IPHONE_13_IMEI = "351044630000019"
# An iPhone 11 IMEI on TAC 35657310 (Osmocom, model A2221), serial 000002. Payload
# 35657310000002, from the right 2,0,0,0,0,0,0,1,3,7,5,6,5,3:
#   doubled 2,0,0,0,3,5,5 -> 4,0,0,0,6,10,10 -> 4+0+0+0+6+1+1 = 12
#   kept    0,0,0,1,7,6,3 -> 17;  total 29 -> check digit 1.
IPHONE_11_IMEI = "356573100000021"


def rule_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> tuple[str | None, str | None]:
    return exc.value.field, exc.value.rule


# --- IMEI ---------------------------------------------------------------------------------


def test_valid_imei_is_returned_compact() -> None:
    assert validate_imei(WIKI_IMEI) == WIKI_IMEI
    assert validate_imei("49-015420-323751-8") == WIKI_IMEI
    assert validate_imei(" 4901 5420 3237 518 ") == WIKI_IMEI
    assert validate_imei(IPHONE_13_IMEI) == IPHONE_13_IMEI


def test_bad_check_digit_is_a_checksum_error() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_imei("490154203237519")  # last digit should be 8
    assert rule_of(exc) == ("imei", "imei-checksum")


def test_imeisv_is_refused_with_its_own_rule() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_imei("35-686800-004141-20")  # 16 digits: TAC, serial, software version 20
    assert rule_of(exc) == ("imei", "imeisv-not-accepted")


@pytest.mark.parametrize("bad", ["49015420323751", "4901542032375189X", "49015420323751A", ""])
def test_wrong_length_or_letters_is_a_format_error(bad: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_imei(bad, field="device_imei")
    assert rule_of(exc) == ("device_imei", "imei-format")


def test_tac_is_the_first_eight_digits() -> None:
    assert tac_of(WIKI_IMEI) == "49015420"
    assert tac_of("35-104463-000001-9") == "35104463"


# --- TAC matching -------------------------------------------------------------------------


def test_match_tac_finds_the_seed_model() -> None:
    models = seed_catalog()
    found = match_tac(models, IPHONE_13_IMEI)
    assert found is not None and found.key == "apple-iphone-13"
    found = match_tac(models, IPHONE_11_IMEI)
    assert found is not None and found.key == "apple-iphone-11"
    assert match_tac(models, WIKI_IMEI) is None


def test_imei_of_another_model_is_a_tac_mismatch() -> None:
    iphone_13 = next(m for m in seed_catalog() if m.key == "apple-iphone-13")
    check_imei_matches_model(iphone_13, IPHONE_13_IMEI)  # its own TAC: accepted
    with pytest.raises(ValidationFailed) as exc:
        check_imei_matches_model(iphone_13, IPHONE_11_IMEI)
    assert rule_of(exc) == ("imei", "tac-mismatch")


def test_model_without_known_tacs_accepts_any_valid_imei() -> None:
    iphone_14 = next(m for m in seed_catalog() if m.key == "apple-iphone-14")
    assert iphone_14.tacs == ()
    check_imei_matches_model(iphone_14, WIKI_IMEI)
    with pytest.raises(ValidationFailed) as exc:  # ...but the IMEI itself must still be valid
        check_imei_matches_model(iphone_14, "490154203237519")
    assert rule_of(exc) == ("imei", "imei-checksum")


# --- catalog CSV --------------------------------------------------------------------------

HEADER = "key,brand,model,release_date,currency,storage_gb,launch_price,tacs,successor_key,tier"
GOOD_CSV = "\n".join(
    [
        HEADER,
        "acme-one,Acme,One,2023-01-10,CNY,256,2999,11111111;22222222,acme-two,midrange",
        "acme-one,Acme,One,2023-01-10,CNY,128,2499,11111111;22222222,acme-two,midrange",
        "",
        "acme-two,Acme,Two,2024-01-10,CNY,128,2799.50,,,midrange",
    ]
)


def test_rows_of_one_key_merge_into_one_model_with_sorted_variants() -> None:
    one, two = parse_catalog_csv(GOOD_CSV)
    assert one == DeviceModel(
        key="acme-one",
        brand="Acme",
        model="One",
        release_date=date(2023, 1, 10),
        currency="CNY",
        variants=(Variant(128, D("2499")), Variant(256, D("2999"))),
        tacs=("11111111", "22222222"),
        successor_key="acme-two",
        tier="midrange",
    )
    assert one.base_variant == Variant(128, D("2499"))
    assert two.variants == (Variant(128, D("2799.50")),)
    assert two.tacs == () and two.successor_key is None


def csv_with(row: str, *, extra: str = "") -> str:
    """The good CSV with its second data row (line 3) replaced, plus optional extra rows."""
    lines = GOOD_CSV.split("\n")
    lines[2] = row
    return "\n".join(lines + ([extra] if extra else []))


ROW3 = "acme-one,Acme,One,2023-01-10,CNY,128,2499,11111111;22222222,acme-two,midrange"


@pytest.mark.parametrize(
    ("row", "field", "rule"),
    [
        (ROW3.replace("acme-one", "Acme One", 1), "row 3: key", "slug"),
        (ROW3.replace("2023-01-10", "2023-13-10"), "row 3: release_date", "date"),
        (ROW3.replace("CNY", "yuan"), "row 3: currency", "currency"),
        (ROW3.replace(",128,", ",128GB,"), "row 3: storage_gb", "positive-integer"),
        (ROW3.replace(",128,", ",0,"), "row 3: storage_gb", "positive-integer"),
        (ROW3.replace("2499", "-2499"), "row 3: launch_price", "positive"),
        (ROW3.replace("2499", "24.999"), "row 3: launch_price", "max-2-decimals"),
        (ROW3.replace("11111111;", "1111111;"), "row 3: tacs", "tac-format"),
        (ROW3.replace("22222222", "11111111"), "row 3: tacs", "duplicate-tac"),
        (ROW3.replace("midrange", "premium"), "row 3: tier", "unknown-tier"),
        (ROW3.replace(",Acme,", ",ACME,"), "row 3: brand", "inconsistent-model"),
        (ROW3.replace(";22222222", ""), "row 3: tacs", "inconsistent-model"),
        (ROW3.replace(",128,2499,", ",256,2499,"), "row 3: storage_gb", "duplicate-variant"),
    ],
)
def test_row_errors_name_the_row_and_column(row: str, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_csv(csv_with(row))
    assert rule_of(exc) == (field, rule)


def test_a_tac_listed_for_two_models_is_an_error() -> None:
    # Row 5 (line 5: the header, two acme-one rows, a blank line, then acme-two).
    text = GOOD_CSV.replace("CNY,128,2799.50,,", "CNY,128,2799.50,22222222,")
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_csv(text)
    assert rule_of(exc) == ("row 5: tacs", "duplicate-tac")
    assert "acme-one" in exc.value.detail


def test_successor_must_exist_and_be_newer() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_csv(GOOD_CSV.replace(",acme-two,midrange", ",acme-three,midrange"))
    assert rule_of(exc) == ("row 2: successor_key", "unknown-model")
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_csv(GOOD_CSV.replace("2024-01-10", "2022-01-10"))
    assert rule_of(exc) == ("row 2: successor_key", "successor-not-newer")


def test_missing_column_is_a_header_error() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_csv(GOOD_CSV.replace(",tier", ",grade", 1))
    assert rule_of(exc) == ("header", "missing-column")


# --- the seed catalog ---------------------------------------------------------------------


def test_seed_catalog_loads_and_is_consistent() -> None:
    models = seed_catalog()
    keys = {m.key for m in models}
    assert 25 <= len(models) <= 40
    assert {"apple", "samsung", "xiaomi", "huawei", "honor", "vivo"} <= {
        m.brand.lower() for m in models
    }
    assert {m.tier for m in models} == {"flagship", "midrange", "budget", "foldable"}
    assert all(m.currency == "CNY" for m in models)
    assert all(m.successor_key is None or m.successor_key in keys for m in models)


def test_seed_iphone_line_and_prices() -> None:
    by_key = {m.key: m for m in seed_catalog()}
    key, chain = "apple-iphone-11", []
    while key:
        chain.append(key)
        key = by_key[key].successor_key or ""
    assert chain == [f"apple-iphone-{n}" for n in range(11, 17)]
    iphone_15 = by_key["apple-iphone-15"]
    assert iphone_15.release_date == date(2023, 9, 22)
    assert [(v.storage_gb, v.launch_price) for v in iphone_15.variants] == [
        (128, D("5999")),
        (256, D("6999")),
        (512, D("8999")),
    ]
    assert by_key["apple-iphone-13"].tacs == ("35104463",)


def test_seed_catalog_returns_a_fresh_list() -> None:
    first = seed_catalog()
    first.clear()
    assert seed_catalog()
