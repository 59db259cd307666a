"""Annualized rates: figures from Reg Z Appendix J, hand calculations and pyxirr as an oracle.

No expected figure here comes from running mobilend.loans.apr.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
import pyxirr
from dateutil.relativedelta import relativedelta
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mobilend.core.errors import NoRateExists, ValidationFailed
from mobilend.loans.apr import (
    dated_irr_apr,
    eu_aprc,
    irr_disclosure,
    periodic_irr,
    regz_apr,
    solve_request,
)

D = Decimal
CENT_PCT = D("0.01")


def monthly(first: date, n: int, every: int = 1) -> list[date]:
    return [first + relativedelta(months=every * k) for k in range(n)]


def weekly(first: date, n: int, every: int = 1) -> list[date]:
    return [first + timedelta(days=7 * every * k) for k in range(n)]


def semimonthly_1st_16th(first_month: date, n_months: int) -> list[date]:
    out = []
    for k in range(n_months):
        month = first_month + relativedelta(months=k)
        out += [month.replace(day=1), month.replace(day=16)]
    return out


def flows(amount: str, dates: list[date]) -> list[tuple[date, Decimal]]:
    return [(d, D(amount)) for d in dates]


# ------------------------------------------------------------ Regulation Z, Appendix J (c)
# 12 CFR 1026, Appendix J, (c) "Examples for the actuarial method": each example's published
# APR (rounded to 2 decimals). The same figures are reproduced in FSharp.Finance.Personal's
# AprUsActuarialTests.fs (github.com/simontreanor/FSharp.Finance.Personal).
APPENDIX_J = {
    # (c)(1)(i) monthly payments, regular first period: $5,000, 24 x $230, 1/10/78 -> 2/10/78
    "c1i": (
        date(1978, 1, 10),
        "5000",
        flows("230", monthly(date(1978, 2, 10), 24)),
        "9.69",
    ),
    # (c)(1)(ii) monthly, long first period: $6,000, 36 x $200, 2/10/78 -> 4/1/78 (t=1, f=19/30)
    "c1ii": (
        date(1978, 2, 10),
        "6000",
        flows("200", monthly(date(1978, 4, 1), 36)),
        "11.82",
    ),
    # (c)(1)(iii) semimonthly (1st and 16th), short first period: $5,000, 24 x $219.17,
    # 2/23/78 -> 3/1/78 (f = 6/15)
    "c1iii": (
        date(1978, 2, 23),
        "5000",
        flows("219.17", semimonthly_1st_16th(date(1978, 3, 1), 12)),
        "10.34",
    ),
    # (c)(1)(iv) quarterly, long first period: $10,000, 40 x $385, 5/23/78 -> 10/1/78
    # (4 months back to 6/1 + 9 days = 129 days = 1 unit-period + 39/90)
    "c1iv": (
        date(1978, 5, 23),
        "10000",
        flows("385", monthly(date(1978, 10, 1), 40, every=3)),
        "8.97",
    ),
    # (c)(1)(v) weekly, long first period: $500, 30 x $17.60, 3/20/78 -> 4/21/78 (t=4, f=4/7)
    "c1v": (
        date(1978, 3, 20),
        "500",
        flows("17.60", weekly(date(1978, 4, 21), 30)),
        "14.96",
    ),
    # (c)(2)(i) monthly, odd first payment: $5,000, $250 on 2/10/78 then 23 x $230
    "c2i": (
        date(1978, 1, 10),
        "5000",
        flows("250", [date(1978, 2, 10)]) + flows("230", monthly(date(1978, 3, 10), 23)),
        "10.08",
    ),
    # (c)(2)(ii) every 4 weeks, long first period, odd first payment: $400, $39.50 on 4/20/78
    # then 11 x $38.31 from 5/18/78
    "c2ii": (
        date(1978, 3, 18),
        "400",
        flows("39.50", [date(1978, 4, 20)]) + flows("38.31", weekly(date(1978, 5, 18), 11, 4)),
        "28.50",
    ),
    # (c)(3)(i) monthly, odd final payment: $5,000, 23 x $230 from 2/10/78, then $280
    "c3i": (
        date(1978, 1, 10),
        "5000",
        flows("230", monthly(date(1978, 2, 10), 23)) + flows("280", [date(1980, 1, 10)]),
        "10.50",
    ),
    # (c)(3)(ii) every 2 weeks, short first period, odd final payment: $200, 19 x $9.50 from
    # 4/11/78, then $30
    "c3ii": (
        date(1978, 4, 3),
        "200",
        flows("9.50", weekly(date(1978, 4, 11), 19, 2))
        + flows("30", [date(1978, 4, 11) + timedelta(days=14 * 19)]),
        "12.22",
    ),
    # (c)(4)(i) monthly, odd first and final payments: $5,000, $250, 22 x $230, $280
    "c4i": (
        date(1978, 1, 10),
        "5000",
        flows("250", [date(1978, 2, 10)])
        + flows("230", monthly(date(1978, 3, 10), 22))
        + flows("280", [date(1980, 1, 10)]),
        "10.90",
    ),
    # (c)(4)(ii) every 2 months, short first period, odd first and final payments: $8,000,
    # $449.36 on 3/1/78, 18 x $465 from 5/1/78, $200 on 5/1/81
    "c4ii": (
        date(1978, 1, 10),
        "8000",
        flows("449.36", [date(1978, 3, 1)])
        + flows("465", monthly(date(1978, 5, 1), 18, every=2))
        + flows("200", [date(1981, 5, 1)]),
        "7.30",
    ),
    # (c)(5)(i) single advance, single payment, term under a year in days: $1,000 on 1/3/78,
    # $1,080 on 9/15/78 (255 days): 8% x 365/255
    "c5i": (date(1978, 1, 3), "1000", flows("1080", [date(1978, 9, 15)]), "11.45"),
}


@pytest.mark.parametrize("example", sorted(APPENDIX_J))
def test_appendix_j_examples(example: str) -> None:
    start, advance, payments, published = APPENDIX_J[example]
    apr = regz_apr([(start, D(advance))], payments)
    assert apr.quantize(CENT_PCT) == D(published)
    assert apr.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("example", "unit", "multiple"),
    [("c1i", "month", 1), ("c1iv", "month", 3), ("c2ii", "week", 4), ("c1iii", "semimonth", 1)],
)
def test_appendix_j_explicit_unit_period_matches_inferred(
    example: str, unit: str, multiple: int
) -> None:
    start, advance, payments, published = APPENDIX_J[example]
    explicit = regz_apr([(start, D(advance))], payments, unit, multiple)
    assert explicit == regz_apr([(start, D(advance))], payments)
    assert explicit.quantize(CENT_PCT) == D(published)


def test_appendix_j_single_payment_hand_figure() -> None:
    # (c)(5)(i) by hand: days 1/3/78 -> 9/15/78 = 28+28+31+30+31+30+31+31+15 = 255;
    # unit-period rate 80/1000, 365/255 unit-periods a year.
    assert (date(1978, 9, 15) - date(1978, 1, 3)).days == 255
    expected = (D("0.08") * 365 / 255 * 100).quantize(D("0.0001"))  # 11.450980...
    assert regz_apr([(date(1978, 1, 3), D(1000))], flows("1080", [date(1978, 9, 15)])) == expected


def test_single_payment_whole_months_uses_12_over_months() -> None:
    # (b)(5): term of 6 whole months -> 1 unit-period, 2 a year: 4% x 2 = 8%.
    apr = regz_apr([(date(2023, 1, 15), D(1000))], flows("1040", [date(2023, 7, 15)]))
    assert apr == D("8.0000")


def test_classic_36_month_loan_is_12_percent() -> None:
    # $5,000 at 1% a month for 36 months: 5000 x 0.01 / (1 - 1.01^-36) = 166.0715... -> $166.07.
    payments = flows("166.07", monthly(date(2024, 2, 1), 36))
    apr = regz_apr([(date(2024, 1, 1), D(5000))], payments)
    assert apr.quantize(CENT_PCT) == D("12.00")
    oracle = D(repr(pyxirr.irr([-5000.0] + [166.07] * 36))) * 1200
    assert abs(apr - oracle) <= D("0.0001")


def test_regz_multiple_advances_constructed_at_one_percent() -> None:
    # 500 on 1/1 and 500 on 2/1, 6 monthly payments from 3/1 chosen so that 1%/month solves
    # 500 + 500/1.01 = p x sum(1.01^-k, k = 2..7) exactly: APR 12%.
    with localcontext() as ctx:
        ctx.prec = 40
        p = (500 + D(500) / D("1.01")) / sum(D("1.01") ** -k for k in range(2, 8))
    advances = [(date(2023, 1, 1), D(500)), (date(2023, 2, 1), D(500))]
    payments = flows(str(p), monthly(date(2023, 3, 1), 6))
    assert regz_apr(advances, payments) == D("12.0000")


def test_odd_first_period_simple_for_regz_compound_for_irr() -> None:
    # 1000 on 1/1/23; payments on 1/16, 2/16, 3/16 are t = 0, 1, 2 months plus f = 15/30.
    # Reg Z (b)(6): 1000 = p / (1.005 x 1.01^t); plain IRR: 1000 = q / 1.01^(t + 1/2).
    with localcontext() as ctx:
        ctx.prec = 40
        annuity = sum(D("1.01") ** -k for k in range(3))
        p = 1000 * D("1.005") / annuity
        q = 1000 * D("1.01").sqrt() / annuity
    dates = [date(2023, 1, 16), date(2023, 2, 16), date(2023, 3, 16)]
    advance = [(date(2023, 1, 1), D(1000))]
    assert regz_apr(advance, flows(str(p), dates)) == D("12.0000")
    assert dated_irr_apr(advance, flows(str(q), dates)) == D("12.0000")
    assert regz_apr(advance, flows(str(q), dates)) != D("12.0000")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=100_00, max_value=1_000_000_00),
    st.integers(min_value=2, max_value=60),
    st.integers(min_value=1, max_value=3000),  # monthly rate in basis points
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 28)),
)
def test_regz_regular_monthly_is_12_x_irr(cents: int, n: int, bp: int, start: date) -> None:
    principal = D(cents) / 100
    rate = D(bp) / 10000
    payment = (principal * rate / (1 - (1 + rate) ** -n)).quantize(D("0.01"))
    apr = regz_apr([(start, principal)], flows(str(payment), monthly(start, n + 1)[1:]))
    oracle = pyxirr.irr([-float(principal)] + [float(payment)] * n)
    assert abs(apr - D(repr(oracle)) * 1200) <= D("0.00011")


# ------------------------------------------------------------ PBoC: periodic IRR, disclosure


def test_pboc_annuity_18_months_at_12_percent() -> None:
    # 5000 at 12%/year = 1%/month, 18 equal installments (等额本息):
    # 1.01^18 = 1.196147..., payment = 50 / (1 - 1/1.196147) = 304.9102... -> 304.91.
    amounts = [D(-5000)] + [D("304.91")] * 18
    result = irr_disclosure(amounts, D(12))
    assert abs(result.simple_pct - D(12)) < D("0.001")  # cent rounding only
    oracle = D(repr(pyxirr.irr([float(a) for a in amounts])))
    assert abs(result.periodic - oracle) < D("1e-12")
    assert abs(result.simple_pct - oracle * 1200) <= D("0.0001")
    # compound: (1.01^12 - 1) x 100 = 12.6825...% at exactly 1%; the rounded payment is a hair lower
    assert abs(result.compound_pct - ((1 + oracle) ** 12 - 1) * 100) <= D("0.0001")
    assert abs(result.compound_pct - D("12.6825")) < D("0.001")


def test_flat_rate_loan_true_rate() -> None:
    # 12,000 at a "monthly flat rate of 0.5%": 12 x (1000 + 60) = 1060, a flat 6% a year. Its
    # true simple annual rate is about 10.9%: the 12 installments discounted at that rate / 12
    # give back the 12,000 (checked by hand below), and pyxirr agrees.
    amounts = [D(-12000)] + [D(1060)] * 12
    result = irr_disclosure(amounts, D(12))
    oracle = D(repr(pyxirr.irr([-12000.0] + [1060.0] * 12)))
    assert abs(result.simple_pct - oracle * 1200) <= D("0.0001")
    monthly_rate = result.simple_pct / 1200
    present_value = sum((1060 / (1 + monthly_rate) ** k for k in range(1, 13)), D(0))
    assert abs(present_value - 12000) < D("0.01")
    assert D("10.85") < result.simple_pct < D("10.95")


def test_disclosure_with_fractional_periods_per_year() -> None:
    # 1000 -> 1100 in one period, 365/14 periods a year: simple 10% x 26.0714...,
    # compound 1.1^26.0714... - 1.
    ppy = D(365) / 14
    result = irr_disclosure([D(-1000), D(1100)], ppy)
    assert result.periodic == D("0.1")
    assert result.simple_pct == (D(10) * ppy).quantize(D("0.0001"))
    with localcontext() as ctx:
        ctx.prec = 50
        compound = ((ppy * D("1.1").ln()).exp() - 1) * 100
    assert result.compound_pct == compound.quantize(D("0.0001"))


def test_two_roots_returns_the_one_nearest_zero() -> None:
    # -100 + 230v - 132v^2 = 0 -> v = (230 +- 10) / 264 -> r = 10% or 20%.
    assert periodic_irr([D(-100), D(230), D(-132)]) == D("0.1")


def test_negative_rate() -> None:
    # -100 + 50v + 40v^2 = 0 -> v = (-50 + sqrt(18500)) / 80, r = 1/v - 1 = -6.99...%
    with localcontext() as ctx:
        ctx.prec = 40
        v = (D(-50) + D(18500).sqrt()) / 80
        expected = 1 / v - 1
    assert abs(periodic_irr([D(-100), D(50), D(40)]) - expected) < D("1e-22")


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        (["-1", "1000"], "999"),  # a huge rate
        (["-1000", "0.001"], "-0.999999"),  # close to -100%
        (["-100", "0", "121"], "0.1"),  # a zero flow in between: 1.1^2 = 1.21
        (["0", "-100", "110"], "0.1"),  # a leading zero flow
    ],
)
def test_extreme_but_exact_rates(amounts: list[str], expected: str) -> None:
    assert periodic_irr([D(a) for a in amounts]) == D(expected)


def test_long_mortgage_against_pyxirr() -> None:
    amounts = [D(-300000)] + [D("1798.65")] * 360  # 6% / 12 over 30 years
    oracle = D(repr(pyxirr.irr([float(a) for a in amounts])))
    assert abs(periodic_irr(amounts) - oracle) < D("1e-12")


regular_flows = st.builds(
    lambda advance, payments: [D(-advance) / 100] + [D(p) / 100 for p in payments],
    st.integers(min_value=100_00, max_value=10_000_000_00),
    st.lists(st.integers(min_value=0, max_value=500_000_00), min_size=1, max_size=48).filter(
        lambda ps: any(ps)
    ),
)


@settings(max_examples=200, deadline=None)
@given(regular_flows)
def test_periodic_irr_agrees_with_pyxirr(amounts: list[Decimal]) -> None:
    oracle = pyxirr.irr([float(a) for a in amounts], silent=True)
    assume(oracle is not None and -0.95 < oracle < 50)
    rate = periodic_irr(amounts)
    assert abs(rate - D(repr(oracle))) < D("1e-9")


@settings(max_examples=200, deadline=None)
@given(regular_flows, st.integers(min_value=1, max_value=10**6))
def test_npv_zero_and_scale_invariance(amounts: list[Decimal], scale: int) -> None:
    try:
        rate = periodic_irr(amounts)
    except NoRateExists:
        assume(False)
        return
    with localcontext() as ctx:
        ctx.prec = 60
        npv = sum((a / (1 + rate) ** k for k, a in enumerate(amounts)), D(0))
        size = sum((abs(a) / (1 + rate) ** k for k, a in enumerate(amounts)), D(0))
    assert abs(npv) <= size * D("1e-18")
    scaled = periodic_irr([a * scale for a in amounts])
    assert abs(scaled - rate) <= D("1e-20") * (1 + abs(rate))


# ------------------------------------------------------------ EU Directive 2008/48/EC Annex I


def test_eu_one_year_ten_percent() -> None:
    # 1,000 drawn, 1,100 repaid exactly one year later (12 months, across 29 Feb 2024): 10%.
    assert eu_aprc([(date(2023, 3, 1), D(1000))], flows("1100", [date(2024, 3, 1)])) == D("10.0000")


def test_eu_days_over_365() -> None:
    # 2023-01-01 -> 2023-01-31 is 30 days, not a whole month: t = 30/365, X = 1.01^(365/30) - 1.
    with localcontext() as ctx:
        ctx.prec = 50
        x = (D(365) / 30 * D("1.01").ln()).exp() - 1
    apr = eu_aprc([(date(2023, 1, 1), D(1000))], flows("1010", [date(2023, 1, 31)]))
    assert apr == (x * 100).quantize(D("0.0001"))  # 12.8735...%


def test_eu_days_over_366_in_a_leap_year() -> None:
    # 2024-02-20 -> 2024-03-15: 24 days; the year counted back from 2024-03-15 holds 29 Feb: 366.
    with localcontext() as ctx:
        ctx.prec = 50
        x = (D(366) / 24 * D("1.01").ln()).exp() - 1
    apr = eu_aprc([(date(2024, 2, 20), D(1000))], flows("1010", [date(2024, 3, 15)]))
    assert apr == (x * 100).quantize(D("0.0001"))


def test_eu_monthly_annuity_at_ten_percent_effective() -> None:
    # Monthly rate i = 1.1^(1/12) - 1 = 0.7974%; 12 payments on 1000: 1000 i / (1 - (1+i)^-12)
    # = 87.82 after rounding: the APRC is 10.0 at the annex's one decimal.
    with localcontext() as ctx:
        ctx.prec = 40
        i = (D("1.1").ln() / 12).exp() - 1
        payment = (1000 * i / (1 - (1 + i) ** -12)).quantize(D("0.01"))
    apr = eu_aprc(
        [(date(2023, 1, 15), D(1000))], flows(str(payment), monthly(date(2023, 2, 15), 12))
    )
    assert apr.quantize(D("0.1")) == D("10.0")
    # whole months are k/12 years, so the APRC is (1 + monthly IRR)^12 - 1
    irr = D(repr(pyxirr.irr([-1000.0] + [float(payment)] * 12)))
    assert abs(apr - ((1 + irr) ** 12 - 1) * 100) <= D("0.0001")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1_00, max_value=50_000_00), min_size=2, max_size=36),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 28)),
)
def test_eu_monthly_flows_match_compounded_irr(payments: list[int], start: date) -> None:
    advance = D(sum(payments)) / 100 * D("0.9")
    amounts = [D(p) / 100 for p in payments]
    dates = monthly(start, len(payments) + 1)[1:]
    apr = eu_aprc([(start, advance)], list(zip(dates, amounts, strict=True)))
    irr = D(repr(pyxirr.irr([-float(advance)] + [float(a) for a in amounts])))
    assert abs(apr - ((1 + irr) ** 12 - 1) * 100) <= D("0.0002")


# ------------------------------------------------------------ failures


def test_same_sign_flows_have_no_rate() -> None:
    with pytest.raises(NoRateExists):
        periodic_irr([D(100), D(50)])
    with pytest.raises(NoRateExists):
        periodic_irr([D(-100), D(-50)])
    with pytest.raises(NoRateExists):
        periodic_irr([D(0), D(0)])


def test_sign_change_without_a_root() -> None:
    # -100 + 50v - 100v^2 < 0 for every v (discriminant 2500 - 40000 < 0)
    with pytest.raises(NoRateExists):
        periodic_irr([D(-100), D(50), D(-100)])


def test_zero_payments_have_no_rate() -> None:
    with pytest.raises(NoRateExists):
        regz_apr([(date(2023, 1, 1), D(1000))], flows("0", monthly(date(2023, 2, 1), 3)))
    with pytest.raises(NoRateExists):
        eu_aprc([(date(2023, 1, 1), D(1000))], flows("0", [date(2023, 2, 1)]))


def test_bad_direct_inputs() -> None:
    with pytest.raises(ValidationFailed) as err:
        periodic_irr([D(-100), 110.0])  # type: ignore[list-item]
    assert err.value.field == "amounts[1]"
    with pytest.raises(ValidationFailed) as err:
        regz_apr([(date(2023, 1, 1), D(1000))], [])
    assert err.value.field == "payments"
    with pytest.raises(ValidationFailed) as err:
        regz_apr([(date(2023, 1, 1), D(1000))], flows("10", [date(2022, 12, 1)]))
    assert (err.value.field, err.value.rule) == ("payments[0].date", "not_before_first_advance")
    with pytest.raises(ValidationFailed) as err:
        regz_apr([(date(2023, 1, 1), D(1000))], flows("10", [date(2023, 2, 1)]), "month", 13)
    assert err.value.field == "unit_multiple"


# ------------------------------------------------------------ JSON entry point


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "regz",
        "advances": [{"date": "1978-01-10", "amount": "5000"}],
        "payments": [
            {"date": d.isoformat(), "amount": "230.00"} for d in monthly(date(1978, 2, 10), 24)
        ],
    }
    body.update(overrides)
    return body


def test_solve_request_regz_matches_appendix_j() -> None:
    out = solve_request(payload())
    assert set(out) == {"apr_pct"}
    assert len(out["apr_pct"].split(".")[1]) == 4
    assert D(out["apr_pct"]).quantize(CENT_PCT) == D("9.69")  # (c)(1)(i)


def test_solve_request_irr_and_eu_on_regular_flows() -> None:
    body = payload(
        method="irr",
        advances=[{"date": "2024-01-01", "amount": 5000}],  # JSON integers are exact: accepted
        payments=[
            {"date": d.isoformat(), "amount": "166.07"} for d in monthly(date(2024, 2, 1), 36)
        ],
    )
    irr = D(repr(pyxirr.irr([-5000.0] + [166.07] * 36)))
    assert abs(D(solve_request(body)["apr_pct"]) - irr * 1200) <= D("0.0001")
    body["method"] = "eu"
    assert abs(D(solve_request(body)["apr_pct"]) - ((1 + irr) ** 12 - 1) * 100) <= D("0.0001")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": None}, "method"),
        ({"method": "apy"}, "method"),
        ({"advances": []}, "advances"),
        ({"advances": None}, "advances"),
        ({"payments": "230"}, "payments"),
        ({"advances": [{"date": "1978-01-10", "amount": 5000.5}]}, "advances[0].amount"),
        ({"advances": [{"date": "1978-01-10", "amount": "5,000"}]}, "advances[0].amount"),
        ({"advances": [{"date": "1978-01-10", "amount": "NaN"}]}, "advances[0].amount"),
        ({"advances": [{"date": "1978-01-10", "amount": True}]}, "advances[0].amount"),
        ({"advances": [{"date": "1978-01-10", "amount": "-5000"}]}, "advances[0].amount"),
        ({"advances": [{"date": "1978-01-10"}]}, "advances[0].amount"),
        ({"advances": [{"date": "10/01/1978", "amount": "5000"}]}, "advances[0].date"),
        ({"advances": [{"date": "1978-02-30", "amount": "5000"}]}, "advances[0].date"),
        ({"advances": [{"amount": "5000"}]}, "advances[0].date"),
        ({"advances": ["5000"]}, "advances[0]"),
        ({"advances": [{"date": "1978-01-10", "amount": "1", "fee": "2"}]}, "advances[0].fee"),
        ({"advances": [{"date": "1978-03-10", "amount": "5000"}]}, "payments[0].date"),
        ({"unit_period": "fortnight"}, "unit_period"),
        ({"unit_period": 7}, "unit_period"),
        ({"unit_period": "week", "unit_multiple": 0}, "unit_multiple"),
        ({"unit_period": "week", "unit_multiple": "2"}, "unit_multiple"),
        ({"unit_period": "year", "unit_multiple": 2}, "unit_multiple"),
        ({"unit_multiple": 3}, "unit_multiple"),
        ({"method": "eu", "unit_period": "month"}, "unit_period"),
        ({"extra": 1}, "extra"),
    ],
)
def test_solve_request_rejects_bad_fields(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        solve_request(payload(**change))
    assert err.value.field == field


def test_solve_request_rejects_non_objects() -> None:
    with pytest.raises(ValidationFailed) as err:
        solve_request([])  # type: ignore[arg-type]
    assert err.value.field == "$"


def test_solve_request_zero_payments_has_no_rate() -> None:
    body = payload(payments=[{"date": "1978-02-10", "amount": "0"}])
    with pytest.raises(NoRateExists):
        solve_request(body)
