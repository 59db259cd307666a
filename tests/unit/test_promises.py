"""Promises to pay, escalation after broken promises, restructuring offers: figures by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.collections.promises import (
    STATUSES,
    PromisePolicy,
    PromiseToPay,
    RestructuringLimits,
    RestructuringOffer,
    after_broken,
    check_restructuring,
    evaluate,
)
from mobilend.core.errors import Conflict, ValidationFailed

D = Decimal
# Made on 03-05: pay 500 by 03-10.
PROMISE = PromiseToPay(amount=D("500"), due_date=date(2026, 3, 10), made_on=date(2026, 3, 5))
TWO_PAYMENTS = [(date(2026, 3, 9), D("300")), (date(2026, 3, 12), D("200"))]
GRACE2 = PromisePolicy(grace_days=2)


def test_paid_in_full_by_the_last_grace_day_is_kept() -> None:
    # Deadline 03-10 + 2 = 03-12: 300 + 200 = 500 counted, full on 03-12.
    result = evaluate(PROMISE, TWO_PAYMENTS, date(2026, 3, 13), policy=GRACE2)
    assert result.status == "kept"
    assert (result.paid, result.shortfall) == (D("500"), D("0"))
    assert (result.deadline, result.kept_on) == (date(2026, 3, 12), date(2026, 3, 12))


def test_with_one_grace_day_the_late_200_does_not_count() -> None:
    # Deadline 03-11: only the 300 of 03-09 counts; after the deadline that is partly kept.
    result = evaluate(PROMISE, TWO_PAYMENTS, date(2026, 3, 12), policy=PromisePolicy(grace_days=1))
    assert result.status == "partially_kept"
    assert (result.paid, result.shortfall, result.kept_on) == (D("300"), D("200"), None)
    assert result.deadline == date(2026, 3, 11)


@pytest.mark.parametrize(
    ("today", "grace", "status", "paid"),
    [
        (date(2026, 3, 9), 2, "pending", D("300")),  # before the due date
        (date(2026, 3, 11), 2, "pending", D("300")),  # inside the grace
        (date(2026, 3, 12), 2, "kept", D("500")),  # the deadline day itself
        (date(2026, 3, 11), 0, "partially_kept", D("300")),  # no grace: deadline 03-10
        (date(2026, 3, 10), 0, "pending", D("300")),  # the due date is still in time
    ],
)
def test_status_by_day(today: date, grace: int, status: str, paid: Decimal) -> None:
    payments = [p for p in TWO_PAYMENTS if p[0] <= today]
    result = evaluate(PROMISE, payments, today, policy=PromisePolicy(grace_days=grace))
    assert (result.status, result.paid) == (status, paid)


def test_nothing_paid_is_pending_to_the_deadline_then_broken() -> None:
    assert evaluate(PROMISE, [], date(2026, 3, 12), policy=GRACE2).status == "pending"
    result = evaluate(PROMISE, [], date(2026, 3, 13), policy=GRACE2)
    assert (result.status, result.paid, result.shortfall) == ("broken", D("0"), D("500"))


def test_payments_before_the_promise_do_not_count() -> None:
    # 500 on 03-04 was known when the promise was made on 03-05.
    result = evaluate(PROMISE, [(date(2026, 3, 4), D("500"))], date(2026, 3, 13), policy=GRACE2)
    assert result.status == "broken"


def test_kept_early_and_overpaid() -> None:
    result = evaluate(PROMISE, [(date(2026, 3, 6), D("600.50"))], date(2026, 3, 7))
    assert (result.status, result.paid, result.shortfall) == ("kept", D("600.50"), D("0"))
    assert result.kept_on == date(2026, 3, 6)


def test_kept_on_is_the_day_the_total_reached_the_amount() -> None:
    payments = [(date(2026, 3, 8), D("250.00")), (date(2026, 3, 6), D("249.99"))]
    result = evaluate(PROMISE, payments, date(2026, 3, 9))
    assert (result.status, result.kept_on, result.paid) == ("pending", None, D("499.99"))
    payments.append((date(2026, 3, 9), D("0.01")))
    assert evaluate(PROMISE, payments, date(2026, 3, 9)).kept_on == date(2026, 3, 9)


@pytest.mark.parametrize(
    ("payments", "today", "field", "rule"),
    [
        ([(date(2026, 3, 14), D("1"))], date(2026, 3, 13), "payments_since", "not-after-today"),
        ([(date(2026, 3, 9), 12.5)], date(2026, 3, 13), "payments_since", "decimal-string"),
        ([(date(2026, 3, 9), D("-1"))], date(2026, 3, 13), "payments_since", "positive"),
        ([], date(2026, 3, 4), "today", "not-before-made-on"),
    ],
)
def test_bad_evaluation_inputs(payments: Any, today: date, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        evaluate(PROMISE, payments, today)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_a_promise_is_positive_money_due_after_it_is_made() -> None:
    with pytest.raises(ValidationFailed) as caught:
        PromiseToPay(amount=D("0"), due_date=date(2026, 3, 10), made_on=date(2026, 3, 5))
    assert caught.value.rule == "positive"
    with pytest.raises(ValidationFailed) as caught:
        PromiseToPay(amount=D("1"), due_date=date(2026, 3, 4), made_on=date(2026, 3, 5))
    assert caught.value.rule == "not-before-made-on"
    text = "12.30"  # parsed like any amount: a string is fine, a float is not
    parsed = PromiseToPay(amount=text, due_date=date(2026, 3, 5), made_on=date(2026, 3, 5))  # type: ignore[arg-type]
    assert parsed.amount == D("12.30")


# --- escalation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "policy", "action", "broken"),
    [
        ([], PromisePolicy(), "none", 0),
        (["kept", "pending"], PromisePolicy(), "none", 0),
        (["broken"], PromisePolicy(), "next_queue", 1),
        (["broken", "kept", "partially_kept", "broken"], PromisePolicy(), "legal", 3),
        (
            ["broken", "kept", "partially_kept", "broken"],
            PromisePolicy(partial_counts_as_broken=False),
            "next_queue",
            2,
        ),
        (
            ["broken", "kept", "partially_kept", "broken"],
            PromisePolicy(reset_on_kept=True),
            "next_queue",
            2,
        ),
        (["broken", "broken"], PromisePolicy(next_queue_after=3, legal_after=5), "none", 2),
    ],
)
def test_after_broken(statuses: list[str], policy: PromisePolicy, action: str, broken: int) -> None:
    result = after_broken(statuses, policy=policy)
    assert (result.action, result.broken) == (action, broken)


def test_escalation_reason_and_bad_input() -> None:
    assert after_broken(["broken"] * 3).reason == "3 broken promises >= 3"
    with pytest.raises(ValidationFailed):
        after_broken(["forgotten"])
    with pytest.raises(ValidationFailed) as caught:
        PromisePolicy(next_queue_after=4, legal_after=3)
    assert caught.value.field == "legal_after"


# --- restructuring ----------------------------------------------------------------------------

LIMITS = RestructuringLimits()  # up to 6 months more; new installment >= 50% of the current


def offer(**overrides: Any) -> RestructuringOffer:
    # 6 installments of 1,000 left on 5,400 of principal; 3 months more at 650 a month.
    args: dict[str, Any] = {
        "current_installment": D("1000"),
        "remaining_months": 6,
        "outstanding_principal": D("5400"),
        "extension_months": 3,
        "new_installment": D("650"),
    }
    args.update(overrides)
    return RestructuringOffer(**args)


def check(item: RestructuringOffer, limits: RestructuringLimits = LIMITS, **state: int) -> None:
    check_restructuring(
        item,
        limits=limits,
        days_past_due=state.get("days_past_due", 10),
        restructurings_so_far=state.get("restructurings_so_far", 0),
    )


def test_an_offer_within_the_limits_passes() -> None:
    check(offer())  # 650 >= 500; 9 x 650 = 5,850 >= 5,400
    check(offer(new_installment=None))  # extension only: the engine recomputes
    check(offer(extension_months=0, new_installment=D("900")))  # 6 x 900 = 5,400: just repays


@pytest.mark.parametrize(
    ("overrides", "limits", "rule"),
    [
        ({"extension_months": 0, "new_installment": None}, LIMITS, "empty-offer"),
        ({"extension_months": 7}, LIMITS, "max-extension"),
        # 4 elapsed + 6 left + 3 more = 13 months > 12
        ({"elapsed_months": 4}, RestructuringLimits(max_term_months=12), "max-term"),
        ({"new_installment": D("1000")}, LIMITS, "reduced-installment"),
        ({"new_installment": D("499.99")}, LIMITS, "min-installment-share"),  # < 0.5 x 1,000
        (
            {"new_installment": D("590")},
            RestructuringLimits(min_installment=D("600")),
            "min-installment",
        ),
        ({"new_installment": D("599.99")}, LIMITS, "amortizes"),  # 9 x 599.99 = 5,399.91
    ],
)
def test_offers_beyond_the_limits(
    overrides: dict[str, Any], limits: RestructuringLimits, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check(offer(**overrides), limits)
    assert caught.value.rule == rule


def test_amortization_detail_shows_the_arithmetic() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check(offer(new_installment=D("599.99")))
    assert caught.value.detail == "9 x 599.99 = 5399.91 does not repay the principal 5400"


def test_loan_state_refusals_are_conflicts() -> None:
    with pytest.raises(Conflict) as caught:
        check(offer(), restructurings_so_far=1)
    assert (caught.value.status, caught.value.rule) == (409, "max-restructurings")
    with pytest.raises(Conflict) as caught:
        check(offer(), RestructuringLimits(min_days_past_due=30), days_past_due=29)
    assert caught.value.rule == "min-days-past-due"
    check(offer(), RestructuringLimits(min_days_past_due=30), days_past_due=30)


# --- properties -------------------------------------------------------------------------------

PAYMENT = st.tuples(
    st.integers(0, 20).map(lambda d: date(2026, 3, 1) + timedelta(days=d)),
    st.integers(1, 40_000).map(lambda c: Decimal(c).scaleb(-2)),
)


@given(payments=st.lists(PAYMENT, max_size=6), grace=st.integers(0, 5))
def test_paid_and_shortfall_add_up(payments: list[tuple[date, Decimal]], grace: int) -> None:
    today = date(2026, 3, 21)
    result = evaluate(PROMISE, payments, today, policy=PromisePolicy(grace_days=grace))
    deadline = date(2026, 3, 10) + timedelta(days=grace)
    counted = sum((v for d, v in payments if date(2026, 3, 5) <= d <= deadline), Decimal(0))
    assert result.paid == counted
    assert result.status in STATUSES and result.status != "pending"  # 03-21 is past any deadline
    assert (result.status == "kept") == (counted >= D("500"))
    assert result.shortfall == max(D("500") - counted, D(0))
    assert (result.status == "broken") == (counted == 0)
