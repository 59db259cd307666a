"""Risk-based pricing and the legal cap: hand-worked prices, the cap cut checked with pyxirr."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
import pyxirr
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.pricing import (
    JURISDICTIONS,
    RATE_STEP,
    offer_within_cap,
    price,
    price_breakdown,
)
from mobilend.loans.quoting import quote
from mobilend.loans.terms import Frequency, LoanTerms

D = Decimal
MONTHLY = Frequency.parse("monthly")
START = date(2026, 1, 15)
BASE = {
    "cost_of_funds": D("0.04"),
    "operating_cost": D("0.05"),
    "margin": D("0.03"),
    "floor": D("0.08"),
    "max_rate": D("0.24"),
}


def test_price_adds_cost_of_funds_expected_loss_operating_cost_and_margin() -> None:
    # EL = 0.05 x 0.6 x 12/12 = 0.03; 0.04 + 0.03 + 0.05 + 0.03 = 0.15
    assert price(pd=D("0.05"), lgd=D("0.6"), **BASE) == D("0.15")


def test_price_rounds_up_to_the_step() -> None:
    # EL = 0.0333 x 0.45 = 0.014985; sum 0.134985 -> up to the next 0.0001: 0.1350
    p = price_breakdown(pd=D("0.0333"), lgd=D("0.45"), **BASE)
    assert (p.expected_loss, p.unrounded, p.rate, p.bound) == (
        D("0.014985"),
        D("0.134985"),
        D("0.1350"),
        None,
    )


def test_a_pd_over_a_shorter_horizon_is_annualized() -> None:
    # a 6-month PD of 3%: EL = 0.03 x 0.6 x 12/6 = 0.036; 0.04 + 0.036 + 0.05 + 0.03 = 0.156
    assert price(pd=D("0.03"), lgd=D("0.6"), pd_horizon_months=6, **BASE) == D("0.156")


def test_price_is_held_within_floor_and_max() -> None:
    # no risk: 0.04 + 0 + 0.05 + 0.03 = 0.12 >= floor; with cheaper funding 0.02+0.01+0.01 = 0.04
    low = price_breakdown(
        pd=D(0),
        lgd=D("0.6"),
        **{**BASE, "cost_of_funds": D("0.02"), "operating_cost": D("0.01"), "margin": D("0.01")},
    )
    assert (low.unrounded, low.rate, low.bound) == (D("0.04"), D("0.08"), "floor")
    # EL = 0.30 x 0.8 = 0.24; 0.04 + 0.24 + 0.05 + 0.03 = 0.36 > 0.24: held at the max, flagged
    high = price_breakdown(pd=D("0.30"), lgd=D("0.8"), **BASE)
    assert (high.unrounded, high.rate, high.bound) == (D("0.36"), D("0.24"), "max")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pd": D("1.5")}, "pd"),
        ({"lgd": D("-0.1")}, "lgd"),
        ({"margin": D("-0.01")}, "margin"),
        ({"max_rate": D("0.05")}, "max_rate"),
        ({"pd_horizon_months": 0}, "pd_horizon_months"),
    ],
)
def test_price_refuses_bad_inputs(changes: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"pd": D("0.05"), "lgd": D("0.6"), **BASE, **changes}
    with pytest.raises(ValidationFailed) as exc:
        price(**args)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_jurisdictions() -> None:
    assert {k: (j.cap_pct, j.basis) for k, j in JURISDICTIONS.items()} == {
        "CN-24": (D(24), "compound"),
        "CN-36": (D(36), "compound"),
        "US-MLA-36": (D(36), "simple"),
    }


def test_an_offer_within_the_cap_is_not_cut() -> None:
    # 1000 for one month at 12%: 1010 back, i = 1% a month exactly: simple 12%, compound
    # 1.01^12 - 1 = 12.6825% (1.01^12 = 1.12682503)
    offer = offer_within_cap(LoanTerms(D(1000), D("0.12"), 1, MONTHLY, START), D(24))
    assert offer.offered and not offer.cut
    assert (offer.annual_rate, offer.irr_simple_pct, offer.irr_compound_pct) == (
        D("0.12"),
        D("12.0000"),
        D("12.6825"),
    )
    assert (offer.installment, offer.total_interest, offer.total_payment) == (
        D("1010.00"),
        D("10.00"),
        D("1010.00"),
    )
    assert offer.reasons[0].code == "within-cap"


def _monthly_compound(flows: list[Decimal]) -> float:
    rate = pyxirr.irr([float(f) for f in flows])
    assert rate is not None
    return float((1 + rate) ** 12 - 1)


def _flows(terms: LoanTerms) -> list[Decimal]:
    s = quote(terms).schedule
    return [-s.disbursed_amount, *(i.total for i in s.installments)]


def test_cap_cut_lowers_the_rate_to_the_largest_step_within_the_cap() -> None:
    # 10,000 over 12 months, 300 fee deducted (9,700 received), priced at 30%, cap 24% compound.
    # Highest monthly IRR: i* = 1.24^(1/12) - 1 = 0.0180876 (ln 1.24 = 0.2151114, /12, exp).
    # Highest level installment: 9700 / ((1 - 1/1.24) / i*) = 9700 / 10.700622 = 906.489.
    # Installment at nominal r, m = r/12: 10000 m / (1 - (1 + m)^-12):
    #   r = 15.82%: m = 0.01318333 -> 906.457 -> 906.46 <= 906.489: within the cap
    #   r = 15.83%: m = 0.01319167 -> 906.504 -> 906.50 >  906.489: above it
    # (the last installment absorbs the rounding: 906.42 at 15.82%, 906.57 at 15.83%; compound
    # IRR 23.9916% and 24.0042%: the same sides.) So the cut rate is 15.82%.
    terms = LoanTerms(D(10000), D("0.30"), 12, MONTHLY, START, upfront_fee=D(300))
    offer = offer_within_cap(terms, D(24), "compound")
    assert offer.offered and offer.cut
    assert offer.annual_rate == D("0.1582")
    assert offer.installment == D("906.46")
    assert offer.disbursed_amount == D("9700.00")
    assert offer.total_fees == D("300.00")
    assert offer.irr_compound_pct <= D(24)
    assert offer.reasons[0].code == "cap-cut"
    assert "30.00% to 15.82%" in offer.reasons[0].en
    assert "由30.00%下调至15.82%" in offer.reasons[0].zh
    # independent IRR (pyxirr) of the offered flows and of the flows one step higher
    assert offer.terms is not None
    assert _monthly_compound(_flows(offer.terms)) <= 0.24
    above = replace(offer.terms, annual_rate=offer.annual_rate + RATE_STEP)
    assert _monthly_compound(_flows(above)) > 0.24


def test_simple_basis_cap_cut() -> None:
    terms = LoanTerms(D(10000), D("0.40"), 12, MONTHLY, START, upfront_fee=D(300))
    offer = offer_within_cap(terms, JURISDICTIONS["US-MLA-36"].cap_pct, "simple")
    assert offer.offered and offer.cut and offer.terms is not None and offer.annual_rate
    rate = pyxirr.irr([float(f) for f in _flows(offer.terms)])
    above = pyxirr.irr(
        [float(f) for f in _flows(replace(offer.terms, annual_rate=offer.annual_rate + RATE_STEP))]
    )
    assert rate is not None and above is not None
    assert rate * 12 <= 0.36 < above * 12


def test_declined_when_the_fees_alone_break_the_cap() -> None:
    # 1000 for one month with a 30 fee deducted: even at 0% the borrower gets 970 and repays 1000.
    # i = 30/970 = 0.0309278: simple 12 i = 37.1134%; compound: ln(1.0309278) = 0.0304592,
    # x 12 = 0.3655106, exp = 1.441250 -> 44.1250%. Above 24% (and 36%): no offer.
    terms = LoanTerms(D(1000), D("0.10"), 1, MONTHLY, START, upfront_fee=D(30))
    for cap, basis in ((D(24), "compound"), (D(36), "simple")):
        offer = offer_within_cap(terms, cap, basis)  # type: ignore[arg-type]
        assert not offer.offered
        assert (offer.status, offer.decline_reason, offer.annual_rate, offer.terms) == (
            "declined",
            "cap",
            None,
            None,
        )
        assert (offer.irr_simple_pct, offer.irr_compound_pct) == (D("37.1134"), D("44.1250"))
        assert offer.reasons[0].code == "cap"


@settings(max_examples=20, deadline=None)
@given(
    principal=st.integers(1000, 50000),
    fee_bp=st.integers(0, 400),  # fee as basis points of principal
    periods=st.integers(3, 24),
    rate_bp=st.integers(0, 6000),
)
def test_an_offer_never_exceeds_the_cap(
    principal: int, fee_bp: int, periods: int, rate_bp: int
) -> None:
    fee = (D(principal) * fee_bp / 10000).quantize(D("0.01"))
    terms = LoanTerms(D(principal), D(rate_bp) / 10000, periods, MONTHLY, START, upfront_fee=fee)
    offer = offer_within_cap(terms, D(24))
    if not offer.offered:
        zero = replace(terms, annual_rate=D(0))
        assert _monthly_compound(_flows(zero)) > 0.24
        return
    assert offer.terms is not None and offer.annual_rate is not None
    assert _monthly_compound(_flows(offer.terms)) <= 0.24 + 1e-12
    if offer.cut:
        above = replace(offer.terms, annual_rate=offer.annual_rate + RATE_STEP)
        assert _monthly_compound(_flows(above)) > 0.24 - 1e-12
    else:
        assert offer.annual_rate == terms.annual_rate
