"""Rate disclosure of whole schedules: bullet, odd first period, holidays, fees, the legal cap."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.loans.apr import dated_irr_disclosure, irr_disclosure
from mobilend.loans.quoting import quote
from mobilend.loans.terms import Frequency, LoanTerms, ScheduleType

D = Decimal
MONTHLY = Frequency.parse("monthly")


def test_bullet_counts_all_periods() -> None:
    # 1200 at 12% for 3 months, bullet: 1236.00 after 3 months.
    # periodic r = 1.03**(1/3) - 1 = 0.00990163; simple 12r = 11.8820%; compound 1.03**4 - 1.
    q = quote(LoanTerms(D(1200), D("0.12"), 3, MONTHLY, date(2025, 1, 15), ScheduleType.BULLET))
    assert q.schedule.installments[0].total == D("1236.00")
    assert q.apr.simple_pct == D("11.8820")
    assert q.apr.compound_pct == D("12.5509")  # 1.03**4 = 1.12550881


def test_upfront_fee_raises_the_rate() -> None:
    # 1000 over 1 month at 0% with a 10.00 fee deducted: 990 out, 1000 back a month later.
    # r = 1000/990 - 1 = 1/99; simple 1200/99 = 12.1212%; compound (100/99)**12 - 1:
    # 12 ln(100/99) = 0.1206041, exp = 1.1281782 -> 12.8178%.
    q = quote(LoanTerms(D(1000), D(0), 1, MONTHLY, date(2025, 1, 1), upfront_fee=D(10)))
    assert q.apr.simple_pct == D("12.1212")
    assert q.apr.compound_pct == D("12.8178")


def test_dated_path_agrees_with_period_path_on_the_grid() -> None:
    flows = [D("-1000"), D("340"), D("340"), D("340")]
    dates = [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]
    by_period = irr_disclosure(flows, D(12))
    by_date = dated_irr_disclosure([(dates[0], D(1000))], [(d, D(340)) for d in dates[1:]], "month")
    assert by_date == by_period


def test_cap_refuses_the_offer_and_names_the_field() -> None:
    terms = LoanTerms(D(1000), D("0.30"), 12, MONTHLY, date(2025, 1, 1))
    with pytest.raises(ValidationFailed) as exc:
        quote(terms, apr_cap_pct=D(24))
    assert exc.value.field == "annual_rate_pct" and exc.value.rule == "apr-cap"
    assert quote(terms, apr_cap_pct=D(36)).apr.simple_pct < D(36)
