"""Credit limits: the lowest of the policy cap, affordability, collateral and the regulatory
per-borrower maximum (pure).

Constraints (each is the room left for this loan; the lowest binds):

- policy: `policy_cap`, the most the credit policy lends on this application (score band,
  product maximum). Existing debt is not subtracted: the cap is per loan.
- affordability: `affordability_share` x `annual_income` - `existing_debt`. The online-microloan
  draft rules (2020-11-02) cap a person's balance at one third of the average annual income of
  the last 3 years, so pass that average; `affordability_share=None` turns the rule off (bank
  internet loans have no such rule).
- collateral: `collateral_value` x `max_ltv`, when a device is pledged for this loan.
- regulatory: `regulatory_max` - `existing_debt`: the per-borrower maximum is on the balance the
  borrower owes the lender, so what is already owed uses part of it. Defaults: 300,000 CNY
  (online microloans, the draft rules above); 200,000 CNY for commercial-bank internet loans
  (CBIRC Order 2020 No. 9): see REGULATORY_MAX.

`existing_debt` is the outstanding balance that counts against the per-borrower limits (the
lender's own loans to the borrower). The limit is the lowest constraint, never negative, rounded
DOWN to `multiple` (100 by default). On a tie the binding constraint named is the first in the
order regulatory, affordability, collateral, policy. Arithmetic is exact (fractions), so one
third of 90,000 is 30,000, not 29,999.99...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Literal

from mobilend.core.errors import ValidationFailed

Binding = Literal["regulatory", "affordability", "collateral", "policy"]
ORDER: tuple[Binding, ...] = ("regulatory", "affordability", "collateral", "policy")
REGULATORY_MAX: Mapping[str, Decimal] = {
    "CN-BANK-INTERNET": Decimal(200_000),  # CBIRC Order 2020 No. 9, per borrower
    "CN-MICROLOAN-ONLINE": Decimal(300_000),  # online microloan draft rules 2020-11-02
}
AFFORDABILITY_SHARE = Fraction(1, 3)  # online microloan draft rules: 1/3 of annual income
LIMIT_MULTIPLE = Decimal(100)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Limit:
    amount: Decimal  # the credit limit: >= 0, a multiple of `multiple`
    binding: Binding  # the constraint that set it
    constraints: Mapping[Binding, Decimal]  # each applicable constraint's room (>= 0, cents down)
    explanation_en: str
    explanation_zh: str
    currency: str = "CNY"


def credit_limit(
    *,
    policy_cap: Decimal,
    annual_income: Decimal | None = None,
    existing_debt: Decimal = Decimal(0),
    collateral_value: Decimal | None = None,
    max_ltv: Decimal | None = None,
    regulatory_max: Decimal = REGULATORY_MAX["CN-MICROLOAN-ONLINE"],
    affordability_share: Fraction | Decimal | None = AFFORDABILITY_SHARE,
    multiple: Decimal = LIMIT_MULTIPLE,
    currency: str = "CNY",
) -> Limit:
    """The lowest applicable constraint, floored at 0 and rounded down to `multiple`."""
    _non_negative("policy_cap", policy_cap)
    _non_negative("existing_debt", existing_debt)
    _non_negative("regulatory_max", regulatory_max)
    if not multiple.is_finite() or multiple <= 0:
        raise ValidationFailed("multiple", "positive", "multiple must be > 0")
    debt = Fraction(existing_debt)
    room: dict[Binding, Fraction] = {"regulatory": Fraction(regulatory_max) - debt}
    share: Fraction | None = None
    if affordability_share is not None:
        share = Fraction(affordability_share)
        if not 0 < share <= 1:
            raise ValidationFailed(
                "affordability_share", "fraction", "affordability_share must be in (0, 1]"
            )
        if annual_income is None:
            raise ValidationFailed(
                "annual_income", "required", "annual_income is needed for the affordability rule"
            )
        _non_negative("annual_income", annual_income)
        room["affordability"] = share * Fraction(annual_income) - debt
    if (collateral_value is None) != (max_ltv is None):
        field = "max_ltv" if max_ltv is None else "collateral_value"
        raise ValidationFailed(field, "required", "collateral_value and max_ltv go together")
    if collateral_value is not None and max_ltv is not None:
        _non_negative("collateral_value", collateral_value)
        if not 0 < max_ltv <= 1:
            raise ValidationFailed("max_ltv", "fraction", "max_ltv must be in (0, 1]")
        room["collateral"] = Fraction(collateral_value) * Fraction(max_ltv)
    room["policy"] = Fraction(policy_cap)

    binding = min((b for b in ORDER if b in room), key=lambda b: (room[b], ORDER.index(b)))
    step = Fraction(multiple)
    amount = Decimal(math.floor(max(room[binding], Fraction(0)) / step)) * multiple
    en, zh = _explain(
        binding,
        amount=amount,
        currency=currency,
        policy_cap=policy_cap,
        income=annual_income,
        share=share,
        debt=existing_debt,
        collateral=collateral_value,
        ltv=max_ltv,
        regulatory_max=regulatory_max,
    )
    shown = {b: _cents(max(room[b], Fraction(0))) for b in ORDER if b in room}
    return Limit(amount, binding, shown, en, zh, currency)


def _non_negative(name: str, value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValidationFailed(name, "non-negative", f"{name} must be a finite amount >= 0")


def _cents(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        _CENT, rounding=ROUND_FLOOR
    )


def _share_text(share: Fraction | None) -> tuple[str, str]:
    if share is None:
        return "", ""
    if share == Fraction(1, 3):
        return "one third", "三分之一"
    pct = format((Decimal(share.numerator) / share.denominator * 100).normalize(), "f")
    return f"{pct}%", f"{pct}%"


def _explain(
    binding: Binding,
    *,
    amount: Decimal,
    currency: str,
    policy_cap: Decimal,
    income: Decimal | None,
    share: Fraction | None,
    debt: Decimal,
    collateral: Decimal | None,
    ltv: Decimal | None,
    regulatory_max: Decimal,
) -> tuple[str, str]:
    def en(x: Decimal | None) -> str:
        return f"{currency} {x or 0:,}"

    def zh(x: Decimal | None) -> str:
        return f"{x or 0:,}元" if currency == "CNY" else f"{x or 0:,} {currency}"

    a_en, a_zh = en(amount), zh(amount)
    if binding == "regulatory":
        return (
            f"Your limit is {a_en}: the regulatory maximum of {en(regulatory_max)} per borrower, "
            f"less the {en(debt)} you already owe.",
            f"您的额度为{a_zh}：单户借款上限{zh(regulatory_max)}，扣除您已有借款{zh(debt)}。",
        )
    if binding == "affordability":
        share_en, share_zh = _share_text(share)
        return (
            f"Your limit is {a_en}: {share_en} of your annual income of {en(income)}, "
            f"less the {en(debt)} you already owe.",
            f"您的额度为{a_zh}：年收入{zh(income)}的{share_zh}，扣除您已有借款{zh(debt)}。",
        )
    if binding == "collateral":
        ltv_text = format(((ltv or Decimal(0)) * 100).normalize(), "f") + "%"
        return (
            f"Your limit is {a_en}: {ltv_text} of the value of your pledged phone, "
            f"{en(collateral)}.",
            f"您的额度为{a_zh}：质押手机估值{zh(collateral)}的{ltv_text}。",
        )
    return (
        f"Your limit is {a_en}: the most our credit policy lends on this application is "
        f"{en(policy_cap)}.",
        f"您的额度为{a_zh}：本次申请适用的信贷政策额度上限为{zh(policy_cap)}。",
    )
