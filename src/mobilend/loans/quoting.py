"""Turn a product and a loan request into terms, a schedule and the rate disclosure (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from mobilend.core.dates import nominal_due_dates
from mobilend.core.errors import ValidationFailed
from mobilend.loans.apr import IrrDisclosure, dated_irr_disclosure, irr_disclosure
from mobilend.loans.schedule import Schedule, build_schedule
from mobilend.loans.schemas import ProductConfig
from mobilend.loans.terms import Frequency, FrequencyUnit, LoanTerms

HUNDRED = Decimal(100)
_UNIT_NAME = {
    FrequencyUnit.DAY: "day",
    FrequencyUnit.WEEK: "week",
    FrequencyUnit.SEMIMONTH: "semimonth",
    FrequencyUnit.MONTH: "month",
}


@dataclass(frozen=True)
class Quote:
    terms: LoanTerms
    schedule: Schedule
    apr: IrrDisclosure


def terms_for(
    config: ProductConfig,
    *,
    currency: str,
    principal: Decimal,
    periods: int,
    start: date,
    annual_rate_pct: Decimal | None = None,
    first_due_date: date | None = None,
) -> LoanTerms:
    """Product defaults + the borrower's choices, checked against the product's limits."""
    rate_pct = config.annual_rate_pct if annual_rate_pct is None else annual_rate_pct
    if not config.min_principal <= principal <= config.max_principal:
        raise ValidationFailed(
            "principal",
            "product-range",
            f"principal must be between {config.min_principal} and {config.max_principal}",
        )
    if not config.min_periods <= periods <= config.max_periods:
        raise ValidationFailed(
            "periods",
            "product-range",
            f"periods must be between {config.min_periods} and {config.max_periods}",
        )
    if not config.min_annual_rate_pct <= rate_pct <= config.max_annual_rate_pct:
        raise ValidationFailed(
            "annual_rate_pct",
            "product-range",
            f"annual_rate_pct must be between {config.min_annual_rate_pct} and "
            f"{config.max_annual_rate_pct}",
        )
    if first_due_date is not None and first_due_date <= start:
        raise ValidationFailed(
            "first_due_date", "after-start", "first_due_date must be after start_date"
        )
    return LoanTerms(
        principal=principal,
        annual_rate=rate_pct / HUNDRED,
        periods=periods,
        frequency=Frequency.parse(config.frequency),
        start=start,
        schedule=config.schedule,
        interest_period=config.interest_period,
        day_count=config.day_count,
        currency=currency,
        installment_multiple=config.installment_multiple,
        installment_rounding=config.installment_rounding,
        rounding=config.rounding,
        principal_grace_periods=config.principal_grace_periods,
        interest_free_periods=config.interest_free_periods,
        upfront_fee=config.upfront_fee,
        upfront_fee_treatment=config.upfront_fee_treatment,
        installment_fee=config.installment_fee,
        business_day_rule=config.business_day_rule,
        calendar=config.calendar,
        first_due_date=first_due_date,
    )


def quote(terms: LoanTerms, *, apr_cap_pct: Decimal | None = None) -> Quote:
    """Schedule and IRR disclosure; refuse an offer whose annualized rate breaks the cap."""
    schedule = build_schedule(terms)
    disclosure = disclose(schedule)
    if apr_cap_pct is not None and disclosure.compound_pct > apr_cap_pct:
        raise ValidationFailed(
            "annual_rate_pct",
            "apr-cap",
            f"annualized rate by IRR {disclosure.compound_pct}% (compound, fees included) exceeds "
            f"the product cap of {apr_cap_pct}%",
        )
    return Quote(terms=terms, schedule=schedule, apr=disclosure)


def disclose(schedule: Schedule) -> IrrDisclosure:
    """IRR of the borrower's cash flows (disbursed amount out, installments in), fees included.

    When every due date sits on the regular grid (start + k periods) the flows are placed by
    period number (a bullet's single installment at period n); otherwise (odd first period,
    due dates moved off holidays) time is counted in unit-periods and days as in Regulation Z
    Appendix J, the odd fraction compounding. Either way the periodic IRR is annualized both
    simply (x periods a year) and by compounding.
    """
    terms = schedule.terms
    grid = nominal_due_dates(terms.start, terms.frequency, terms.periods)
    period_of = {d: k for k, d in enumerate(grid, start=1)}
    ks = [period_of.get(i.due_date) for i in schedule.installments]
    if terms.first_due_date is None and all(k is not None for k in ks):
        amounts = [Decimal(0)] * (len(grid) + 1)
        amounts[0] = -schedule.disbursed_amount
        for k, inst in zip(ks, schedule.installments, strict=True):
            amounts[k or 0] += inst.total
        return irr_disclosure(amounts, terms.frequency.periods_per_year)
    return dated_irr_disclosure(
        [(terms.start, schedule.disbursed_amount)],
        [(i.due_date, i.total) for i in schedule.installments],
        _UNIT_NAME[terms.frequency.unit],
        terms.frequency.count,
    )


def quote_json(q: Quote) -> dict[str, object]:
    """The stable JSON shape shared by `mobilend quote --json` and POST /v1/quotes."""
    s = q.schedule
    return {
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "principal": str(i.principal),
                "interest": str(i.interest),
                "fee": str(i.fee),
                "total": str(i.total),
                "balance": str(i.balance),
            }
            for i in s.installments
        ],
        "total_interest": str(s.total_interest),
        "total_fees": str(s.total_fees),
        "total_payment": str(s.total_payment),
        "disbursed_amount": str(s.disbursed_amount),
        "apr": {
            "irr_simple_pct": str(q.apr.simple_pct),
            "irr_compound_pct": str(q.apr.compound_pct),
        },
    }
