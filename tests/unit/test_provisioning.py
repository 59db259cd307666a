"""Loan loss provisions: expected loss and regulatory tier rates, worked by hand to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import RoundingMode
from mobilend.servicing.classification import LoanClass
from mobilend.servicing.provisioning import (
    PBOC_2002_RATES,
    ClassRates,
    ProvisionMethod,
    ProvisionSettings,
    expected_loss,
    provision_for,
    regulatory_provision,
)

D = Decimal
C = LoanClass


# --- expected loss ---------------------------------------------------------------------------


def test_expected_loss_without_collateral() -> None:
    # 1234.56 x 0.25 = 308.64; 308.64 x 0.45 = 138.888 -> 138.89.
    result = expected_loss(exposure=D("1234.56"), pd=D("0.25"), lgd=D("0.45"))
    assert result.amount == D("138.89")
    assert (result.rate, result.base, result.collateral_deducted) == (
        D("0.1125"), D("1234.56"), D("0"),
    )  # fmt: skip
    assert (result.pd, result.lgd, result.method) == (
        D("0.25"), D("0.45"), ProvisionMethod.EXPECTED_LOSS,
    )  # fmt: skip


def test_expected_loss_net_of_the_phone_lending_value() -> None:
    # 2000.00 - 1200.00 = 800.00; 800.00 x 0.25 x 0.45 = 800 x 0.1125 = 90.00.
    result = expected_loss(
        exposure=D("2000.00"), pd=D("0.25"), lgd=D("0.45"), collateral_value=D("1200.00")
    )
    assert (result.base, result.collateral_deducted, result.amount) == (
        D("800.00"), D("1200.00"), D("90.00"),
    )  # fmt: skip


def test_collateral_above_exposure_floors_at_zero() -> None:
    # 500.00 - 800.00 < 0 -> base 0, nothing to provide; the pledge covers all 500.00.
    result = expected_loss(
        exposure=D("500.00"), pd=D("0.9"), lgd=D("0.6"), collateral_value=D("800.00")
    )
    assert (result.base, result.collateral_deducted, result.amount) == (D(0), D("500.00"), D(0))


def test_a_worthless_pledge_deducts_nothing() -> None:
    # 100.00 x 0.5 x 0.5 = 25.00.
    result = expected_loss(exposure=D("100.00"), pd=D("0.5"), lgd=D("0.5"), collateral_value=D(0))
    assert result.amount == D("25.00")


def test_rounding_happens_once_at_the_end() -> None:
    # 100.05 x 0.3 x 0.3 = 100.05 x 0.09 = 9.0045 -> 9.00. Rounding EAD x PD first would give
    # 30.015 -> 30.02, then x 0.3 = 9.006 -> 9.01: one cent more.
    assert expected_loss(exposure=D("100.05"), pd=D("0.3"), lgd=D("0.3")).amount == D("9.00")


def test_whole_yuan_unit() -> None:
    # 1235 x 0.1125 = 138.9375 -> 139.
    result = expected_loss(exposure=D("1235"), pd=D("0.25"), lgd=D("0.45"), unit=D(1))
    assert result.amount == D("139")


# --- regulatory rates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loan_class", "expected"),
    [
        (C.NORMAL, "12.35"),  # 1234.56 x 1% = 12.3456 -> 12.35
        (C.SPECIAL_MENTION, "24.69"),  # x 2% = 24.6912 -> 24.69
        (C.SUBSTANDARD, "308.64"),  # x 25%
        (C.DOUBTFUL, "617.28"),  # x 50%
        (C.LOSS, "1234.56"),  # x 100%
    ],
)
def test_pboc_2002_rates(loan_class: LoanClass, expected: str) -> None:
    result = regulatory_provision(exposure=D("1234.56"), loan_class=loan_class)
    assert result.amount == D(expected)
    assert (result.method, result.pd, result.lgd) == (ProvisionMethod.REGULATORY_RATE, None, None)


def test_half_even_ties() -> None:
    # 10.50 x 25% = 2.625: half-even -> 2.62 (2 is even), half-up -> 2.63.
    # 10.70 x 25% = 2.675: half-even -> 2.68.
    sub = C.SUBSTANDARD
    assert regulatory_provision(exposure=D("10.50"), loan_class=sub).amount == D("2.62")
    assert regulatory_provision(exposure=D("10.70"), loan_class=sub).amount == D("2.68")
    half_up = regulatory_provision(
        exposure=D("10.50"), loan_class=sub, rounding=RoundingMode.HALF_UP
    )
    assert half_up.amount == D("2.63")


def test_regulatory_rates_net_of_collateral_only_when_set() -> None:
    # Gross: 2000.00 x 25% = 500.00. Net: (2000.00 - 1200.00) x 25% = 200.00.
    args = {"exposure": D("2000.00"), "loan_class": C.SUBSTANDARD, "collateral_value": D("1200")}
    assert regulatory_provision(**args).amount == D("500.00")  # type: ignore[arg-type]
    net = regulatory_provision(**args, net_of_collateral=True)  # type: ignore[arg-type]
    assert (net.base, net.collateral_deducted, net.amount) == (D("800.00"), D("1200"), D("200.00"))


def test_floating_substandard_rate_is_a_setting() -> None:
    # Substandard may float +-20%: 25% x 1.2 = 30%. 1000.00 x 30% = 300.00.
    rates = ClassRates(D("0.01"), D("0.02"), D("0.30"), D("0.60"), D("1"))
    result = regulatory_provision(exposure=D("1000.00"), loan_class=C.SUBSTANDARD, rates=rates)
    assert result.amount == D("300.00")


# --- provision_for and settings --------------------------------------------------------------

PD_BY_CLASS = ClassRates(D("0.01"), D("0.10"), D("0.40"), D("0.80"), D("1"))
PD_BY_BUCKET = {"M0": D("0.02"), "M1": D("0.15"), "M2": D("0.40"), "M3+": D("0.75")}


def test_provision_for_defaults_to_regulatory_rates() -> None:
    # 1234.56 x 2% = 24.69.
    result = provision_for(
        exposure=D("1234.56"), loan_class=C.SPECIAL_MENTION, settings=ProvisionSettings()
    )
    assert (result.method, result.amount) == (ProvisionMethod.REGULATORY_RATE, D("24.69"))


def test_provision_for_expected_loss_by_class() -> None:
    # Doubtful PD 0.80, LGD 0.60: (3000.00 - 1000.00) x 0.48 = 960.00.
    settings = ProvisionSettings(
        method=ProvisionMethod.EXPECTED_LOSS, pd_by_class=PD_BY_CLASS, lgd=D("0.60")
    )
    result = provision_for(
        exposure=D("3000.00"),
        loan_class=C.DOUBTFUL,
        settings=settings,
        collateral_value=D("1000.00"),
    )
    assert (result.pd, result.rate, result.amount) == (D("0.80"), D("0.4800"), D("960.00"))


def test_provision_for_expected_loss_by_bucket() -> None:
    # M2 PD 0.40, LGD 0.60: 999.99 x 0.24 = 239.9976 -> 240.00.
    settings = ProvisionSettings(
        method=ProvisionMethod.EXPECTED_LOSS, pd_by_bucket=PD_BY_BUCKET, lgd=D("0.60")
    )
    result = provision_for(
        exposure=D("999.99"), loan_class=C.SPECIAL_MENTION, settings=settings, bucket="M2"
    )
    assert result.amount == D("240.00")
    with pytest.raises(ValidationFailed) as missing:
        provision_for(exposure=D("1.00"), loan_class=C.NORMAL, settings=settings)
    assert (missing.value.field, missing.value.rule) == ("bucket", "required")
    with pytest.raises(ValidationFailed) as unknown:
        provision_for(exposure=D("1.00"), loan_class=C.NORMAL, settings=settings, bucket="M9")
    assert unknown.value.rule == "unknown-bucket"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": ProvisionMethod.EXPECTED_LOSS, "pd_by_class": PD_BY_CLASS}, "lgd"),
        ({"method": ProvisionMethod.EXPECTED_LOSS, "lgd": D("0.5")}, "pd"),
        (
            {
                "method": ProvisionMethod.EXPECTED_LOSS,
                "lgd": D("0.5"),
                "pd_by_class": PD_BY_CLASS,
                "pd_by_bucket": PD_BY_BUCKET,
            },
            "pd",
        ),
        ({"lgd": D("1.01")}, "lgd"),
        ({"pd_by_bucket": {"M0": D("-0.1")}}, "pd_by_bucket[M0]"),
        ({"method": "expected_loss"}, "method"),
        ({"unit": D(0)}, "unit"),
    ],
)
def test_settings_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ProvisionSettings(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_settings_copy_the_bucket_table() -> None:
    table = dict(PD_BY_BUCKET)
    settings = ProvisionSettings(
        method=ProvisionMethod.EXPECTED_LOSS, pd_by_bucket=table, lgd=D("0.5")
    )
    table["M2"] = D("0.99")
    assert settings.pd_by_bucket is not None and settings.pd_by_bucket["M2"] == D("0.40")


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"exposure": D("10.005")}, "exposure", "unit"),
        ({"exposure": D("-1.00")}, "exposure", "non-negative"),
        ({"pd": D("1.01")}, "pd", "range"),
        ({"lgd": D("-0.01")}, "lgd", "range"),
        ({"collateral_value": D("-5")}, "collateral_value", "non-negative"),
    ],
)
def test_input_validation(kwargs: dict[str, Decimal], field: str, rule: str) -> None:
    args = {"exposure": D("100.00"), "pd": D("0.1"), "lgd": D("0.5"), **kwargs}
    with pytest.raises(ValidationFailed) as caught:
        expected_loss(**args)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_class_rates_must_be_shares() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ClassRates(D("0.01"), D("0.02"), D("0.25"), D("0.50"), D("1.5"))
    assert caught.value.field == "loss"
    assert PBOC_2002_RATES.for_class(C.SUBSTANDARD) == D("0.25")


# --- properties ------------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
shares = st.integers(min_value=0, max_value=10_000).map(lambda n: Decimal(n).scaleb(-4))


@given(cents, shares, shares, st.none() | cents)
def test_expected_loss_never_exceeds_exposure_and_is_exact(
    exposure: Decimal, pd: Decimal, lgd: Decimal, collateral: Decimal | None
) -> None:
    result = expected_loss(exposure=exposure, pd=pd, lgd=lgd, collateral_value=collateral)
    assert 0 <= result.amount <= result.base <= exposure
    # Second method: exact rationals; round() on a Fraction rounds half to even.
    net = max(Fraction(0), Fraction(exposure) - Fraction(collateral or 0))
    exact_cents = round(net * Fraction(pd) * Fraction(lgd) * 100)
    assert result.amount == Decimal(exact_cents).scaleb(-2)


@given(cents, st.sampled_from(list(LoanClass)), st.none() | cents, st.booleans())
def test_regulatory_provision_never_exceeds_exposure(
    exposure: Decimal, loan_class: LoanClass, collateral: Decimal | None, net: bool
) -> None:
    result = regulatory_provision(
        exposure=exposure, loan_class=loan_class, collateral_value=collateral, net_of_collateral=net
    )
    assert 0 <= result.amount <= exposure


@given(cents, shares, shares, cents, cents)
def test_more_collateral_never_raises_the_provision(
    exposure: Decimal, pd: Decimal, lgd: Decimal, a: Decimal, b: Decimal
) -> None:
    low, high = sorted((a, b))
    with_low = expected_loss(exposure=exposure, pd=pd, lgd=lgd, collateral_value=low)
    with_high = expected_loss(exposure=exposure, pd=pd, lgd=lgd, collateral_value=high)
    assert with_high.amount <= with_low.amount
