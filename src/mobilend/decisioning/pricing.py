"""Risk-based pricing, and keeping an offer within the legal cap on the annualized rate (pure).

Rates are fractions, as in `LoanTerms.annual_rate` (Decimal("0.15") is 15% a year); caps and
IRR disclosures are percent, as in `mobilend.loans.apr.IrrDisclosure`.

Price. annual rate = cost of funds + expected loss + operating cost + margin, where the
expected-loss charge is PD x LGD x 12 / pd_horizon_months. PD is the probability of default
over `pd_horizon_months` (12 for a scorecard's 12-month bad definition, the default; the loan's
term in months when the model predicts default over the life of the loan). The rate accrues on
the outstanding balance, so the loss it must cover is loss per year of exposure: with a constant
default intensity that is the annual default rate x LGD, whatever the term or the amortization
profile, and a PD over h months converts to a year linearly (x 12/h, the small-PD approximation
of a constant hazard; it understates slightly for large PDs: a 20% 12-month PD is a hazard of
-ln 0.8 = 22.3%). The sum is rounded UP to `step` (0.01% a year by default) so the price never
falls below its cost, then held within [floor, max_rate].

Cap. `offer_within_cap` computes the annualized rate by IRR of the borrower's own cash flows,
fees included (`mobilend.loans.quoting.quote`), and compares it at full precision (not the
4-decimal display) with the cap on the chosen basis: "compound" ((1 + i)^n - 1) or "simple"
(i x n), n periods a year. Above the cap the nominal rate is cut to the largest multiple of
`step` whose IRR is within the cap (bisection; the IRR never falls when the nominal rate rises,
installments being rounded monotonically). When even 0% breaks the cap the offer is declined
with reason "cap": an offer above the cap is never returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Literal

from mobilend.core.errors import ValidationFailed
from mobilend.loans.quoting import Quote, quote
from mobilend.loans.terms import LoanTerms

Basis = Literal["compound", "simple"]
RATE_STEP = Decimal("0.0001")  # 0.01% a year
HUNDRED = Decimal(100)
_SHOWN = Decimal("0.01")  # percentages in reasons carry 2 decimals


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    cap_pct: Decimal  # ceiling on the annualized rate by IRR, fees included
    basis: Basis  # which annualization the ceiling is checked on
    note: str


JURISDICTIONS: Mapping[str, Jurisdiction] = {
    "CN-24": Jurisdiction(
        "CN-24",
        Decimal(24),
        "compound",
        "China: the usual ceiling for licensed internet lending and, reportedly from a Dec-2025 "
        "guideline, for new microloan-company loans. PBoC Announcement [2021] No. 3: the "
        "annualized rate includes all directly related fees; checked on the compound IRR, the "
        "higher of the two figures it allows.",
    ),
    "CN-36": Jurisdiction(
        "CN-36",
        Decimal(36),
        "compound",
        "China: 36% total-cost ceiling for cash loans (2017 notice); lending above 36% to 10+ "
        "borrowers within 2 years is a crime (2019 opinion). Checked on the compound IRR.",
    ),
    "US-MLA-36": Jurisdiction(
        "US-MLA-36",
        Decimal(36),
        "simple",
        "US Military Lending Act (32 CFR 232.4(b)): MAPR <= 36% including add-on charges. The "
        "MAPR is an APR: periodic rate x periods a year (Reg Z actuarial), the simple figure.",
    ),
}


@dataclass(frozen=True, slots=True)
class RatePrice:
    """A risk price and its parts (fractions a year)."""

    rate: Decimal  # what to charge: rounded up to the step, held within [floor, max_rate]
    cost_of_funds: Decimal
    expected_loss: Decimal  # PD x LGD x 12 / pd_horizon_months
    operating_cost: Decimal
    margin: Decimal
    unrounded: Decimal  # the plain sum of the four parts
    bound: Literal["floor", "max"] | None  # which bound moved the rate, if any


def price_breakdown(
    *,
    pd: Decimal,
    lgd: Decimal,
    cost_of_funds: Decimal,
    operating_cost: Decimal,
    margin: Decimal,
    floor: Decimal,
    max_rate: Decimal,
    pd_horizon_months: int = 12,
    step: Decimal = RATE_STEP,
) -> RatePrice:
    """The risk price with its parts. bound == "max" means the risk is not covered at the
    product's maximum rate: the caller should decline or refer rather than lend at a loss."""
    for name, value in (("pd", pd), ("lgd", lgd)):
        if not Decimal(0) <= value <= Decimal(1):
            raise ValidationFailed(name, "fraction", f"{name} must be between 0 and 1")
    for name, value in (
        ("cost_of_funds", cost_of_funds),
        ("operating_cost", operating_cost),
        ("margin", margin),
        ("floor", floor),
    ):
        if value < 0:
            raise ValidationFailed(name, "non-negative", f"{name} must be >= 0")
    if max_rate < floor:
        raise ValidationFailed("max_rate", "at-least-floor", "max_rate must be >= floor")
    if pd_horizon_months < 1:
        raise ValidationFailed("pd_horizon_months", "positive", "pd_horizon_months must be >= 1")
    if step <= 0:
        raise ValidationFailed("step", "positive", "step must be > 0")
    expected_loss = pd * lgd * 12 / pd_horizon_months
    unrounded = cost_of_funds + expected_loss + operating_cost + margin
    rate = (unrounded / step).to_integral_value(rounding=ROUND_CEILING) * step
    bound: Literal["floor", "max"] | None = None
    if rate < floor:
        rate, bound = floor, "floor"
    elif rate > max_rate:
        rate, bound = max_rate, "max"
    return RatePrice(rate, cost_of_funds, expected_loss, operating_cost, margin, unrounded, bound)


def price(
    *,
    pd: Decimal,
    lgd: Decimal,
    cost_of_funds: Decimal,
    operating_cost: Decimal,
    margin: Decimal,
    floor: Decimal,
    max_rate: Decimal,
    pd_horizon_months: int = 12,
    step: Decimal = RATE_STEP,
) -> Decimal:
    """Nominal annual rate (fraction): cost of funds + PD x LGD x 12/pd_horizon_months +
    operating cost + margin, rounded up to `step`, within [floor, max_rate]."""
    return price_breakdown(
        pd=pd,
        lgd=lgd,
        cost_of_funds=cost_of_funds,
        operating_cost=operating_cost,
        margin=margin,
        floor=floor,
        max_rate=max_rate,
        pd_horizon_months=pd_horizon_months,
        step=step,
    ).rate


# ---------------------------------------------------------------- the cap


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # "within-cap", "cap-cut", "cap"
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Offer:
    status: Literal["offered", "declined"]
    requested_rate: Decimal  # the nominal annual rate asked for (fraction)
    annual_rate: Decimal | None  # the nominal annual rate offered (fraction); None if declined
    irr_simple_pct: Decimal  # of the offer; when declined, of the 0% schedule (fees alone)
    irr_compound_pct: Decimal
    cap_pct: Decimal
    basis: Basis
    cut: bool  # the nominal rate was lowered to meet the cap
    terms: LoanTerms | None  # the terms offered
    installment: Decimal | None  # first installment after any principal-grace periods
    total_interest: Decimal | None
    total_fees: Decimal | None
    total_payment: Decimal | None
    disbursed_amount: Decimal | None
    reasons: tuple[Reason, ...]
    decline_reason: Literal["cap"] | None = None

    @property
    def offered(self) -> bool:
        return self.status == "offered"


def annualized_pct(q: Quote, basis: Basis) -> Decimal:
    """The quote's annualized IRR in percent at full precision (not the 4-decimal display)."""
    ppy = q.terms.frequency.periods_per_year
    with localcontext() as ctx:
        ctx.prec = 34
        periodic = q.apr.periodic
        if basis == "simple":
            return periodic * ppy * HUNDRED
        if ppy == ppy.to_integral_value():
            grown = (1 + periodic) ** int(ppy)
        else:
            grown = (ppy * (1 + periodic).ln()).exp()
        return (grown - 1) * HUNDRED


def offer_within_cap(
    terms: LoanTerms, cap_pct: Decimal, basis: Basis = "compound", *, step: Decimal = RATE_STEP
) -> Offer:
    """An offer whose annualized rate by IRR, fees included, is within `cap_pct` on `basis`:
    the terms as given, or the nominal rate cut to the largest multiple of `step` within the
    cap, or a declined offer (decline_reason "cap") when the fees alone break it."""
    if cap_pct <= 0:
        raise ValidationFailed("cap_pct", "positive", "cap_pct must be > 0")
    if basis not in ("compound", "simple"):
        raise ValidationFailed("basis", "one-of", "basis must be compound or simple")
    if step <= 0:
        raise ValidationFailed("step", "positive", "step must be > 0")

    def at(rate: Decimal) -> Quote:
        return quote(replace(terms, annual_rate=rate))

    def within(q: Quote) -> bool:
        return annualized_pct(q, basis) <= cap_pct

    asked = quote(terms)
    if within(asked):
        return _offer(asked, terms.annual_rate, cap_pct, basis, cut=False)
    zero = at(Decimal(0))
    if not within(zero):
        return _declined(zero, terms.annual_rate, cap_pct, basis)
    lo, hi = 0, int((terms.annual_rate / step).to_integral_value(rounding=ROUND_CEILING))
    best = zero  # invariant: lo x step is within the cap, hi x step (>= the asked rate) is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        trial = at(mid * step)
        if within(trial):
            lo, best = mid, trial
        else:
            hi = mid
    return _offer(best, terms.annual_rate, cap_pct, basis, cut=True)


def _pct_text(value: Decimal) -> str:
    return str(value.quantize(_SHOWN, rounding=ROUND_HALF_EVEN))


def _rate_text(rate: Decimal) -> str:
    return _pct_text(rate * HUNDRED)


def _shown_irr(q: Quote, basis: Basis) -> Decimal:
    """The disclosed figure on the basis, shown with 2 decimals but never rounded up past it."""
    full = annualized_pct(q, basis)
    return full.quantize(_SHOWN, rounding=ROUND_FLOOR)


_BASIS_ZH = {"compound": "复利", "simple": "单利"}


def _offer(q: Quote, asked: Decimal, cap_pct: Decimal, basis: Basis, *, cut: bool) -> Offer:
    s = q.schedule
    irr, cap = str(_shown_irr(q, basis)), _pct_text(cap_pct)
    rate = q.terms.annual_rate
    if cut:
        reason = Reason(
            "cap-cut",
            f"The interest rate was lowered from {_rate_text(asked)}% to {_rate_text(rate)}% "
            f"a year so that the annualized rate by IRR ({basis}), fees included, is {irr}%, "
            f"within the {cap}% cap.",
            f"为使含费用的年化利率（IRR，{_BASIS_ZH[basis]}）不超过{cap}%，名义年利率由"
            f"{_rate_text(asked)}%下调至{_rate_text(rate)}%，调整后年化利率为{irr}%。",
        )
    else:
        reason = Reason(
            "within-cap",
            f"The annualized rate by IRR ({basis}), fees included, is {irr}%, within the "
            f"{cap}% cap.",
            f"含费用的年化利率（IRR，{_BASIS_ZH[basis]}）为{irr}%，未超过{cap}%的上限。",
        )
    first = s.installments[min(q.terms.principal_grace_periods, len(s.installments) - 1)]
    return Offer(
        status="offered",
        requested_rate=asked,
        annual_rate=rate,
        irr_simple_pct=q.apr.simple_pct,
        irr_compound_pct=q.apr.compound_pct,
        cap_pct=cap_pct,
        basis=basis,
        cut=cut,
        terms=q.terms,
        installment=first.total,
        total_interest=s.total_interest,
        total_fees=s.total_fees,
        total_payment=s.total_payment,
        disbursed_amount=s.disbursed_amount,
        reasons=(reason,),
    )


def _declined(zero: Quote, asked: Decimal, cap_pct: Decimal, basis: Basis) -> Offer:
    shown = annualized_pct(zero, basis).quantize(_SHOWN, rounding=ROUND_CEILING)
    irr, cap = str(shown), _pct_text(cap_pct)
    reason = Reason(
        "cap",
        f"Even at a 0% interest rate the fees make the annualized rate by IRR ({basis}) {irr}%, "
        f"above the {cap}% cap, so we cannot offer this loan.",
        f"即使名义利率为0%，费用也使年化利率（IRR，{_BASIS_ZH[basis]}）达到{irr}%，超过{cap}%的"
        "上限，因此无法提供该笔贷款。",
    )
    return Offer(
        status="declined",
        requested_rate=asked,
        annual_rate=None,
        irr_simple_pct=zero.apr.simple_pct,
        irr_compound_pct=zero.apr.compound_pct,
        cap_pct=cap_pct,
        basis=basis,
        cut=False,
        terms=None,
        installment=None,
        total_interest=None,
        total_fees=None,
        total_payment=None,
        disbursed_amount=None,
        reasons=(reason,),
        decline_reason="cap",
    )
