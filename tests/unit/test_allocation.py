"""The repayment waterfall: hand-worked splits and Hypothesis properties."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.loans.allocation import (
    Allocation,
    AllocationLine,
    Component,
    Due,
    Strategy,
    Waterfall,
    allocate,
)

D = Decimal
PEN, FEE, INT, PRI = Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL
VERTICAL = Waterfall(strategy=Strategy.VERTICAL)

# Three monthly installments of a 304.91-style loan, plus a 5.00 fee each and some penalty.
#   #1 due 2025-01-15: penalty 2.50, fee 5.00, interest 50.00, principal 254.91 -> 312.41
#   #2 due 2025-02-15: penalty 0.80, fee 5.00, interest 47.45, principal 257.46 -> 310.71
#   #3 due 2025-03-15: penalty 0.00, fee 5.00, interest 44.87, principal 260.04 -> 309.91
DUES = (
    Due(1, date(2025, 1, 15), D("2.50"), D("5.00"), D("50.00"), D("254.91")),
    Due(2, date(2025, 2, 15), D("0.80"), D("5.00"), D("47.45"), D("257.46")),
    Due(3, date(2025, 3, 15), D("0.00"), D("5.00"), D("44.87"), D("260.04")),
)
AS_OF = date(2025, 2, 20)  # #1 and #2 are past due, #3 is not yet due


def lines(*rows: tuple[int, Component, str]) -> tuple[AllocationLine, ...]:
    return tuple(AllocationLine(n, c, D(amount)) for n, c, amount in rows)


def test_horizontal_sweeps_each_component_across_installments() -> None:
    # 320.00: penalties 2.50 + 0.80 = 3.30 -> 316.70 left; fees 5 + 5 -> 306.70;
    # interest 50.00 + 47.45 = 97.45 -> 209.25; principal of #1 (254.91) gets the 209.25.
    result = allocate(D("320.00"), DUES, Waterfall(), as_of=AS_OF)
    assert result == Allocation(
        lines(
            (1, PEN, "2.50"),
            (2, PEN, "0.80"),
            (1, FEE, "5.00"),
            (2, FEE, "5.00"),
            (1, INT, "50.00"),
            (2, INT, "47.45"),
            (1, PRI, "209.25"),
        ),
        D("0.00"),
    )
    assert result.total(PRI) == D("209.25")
    assert result.applied == D("320.00")


def test_vertical_pays_the_oldest_installment_in_full_first() -> None:
    # 320.00: #1 in full 312.41 -> 7.59 left; #2 penalty 0.80 -> 6.79; fee 5.00 -> 1.79;
    # interest 1.79 of 47.45 -> 0 (45.66 interest and all principal of #2 stay unpaid).
    result = allocate(D("320.00"), DUES, VERTICAL, as_of=AS_OF)
    assert result.lines == lines(
        (1, PEN, "2.50"),
        (1, FEE, "5.00"),
        (1, INT, "50.00"),
        (1, PRI, "254.91"),
        (2, PEN, "0.80"),
        (2, FEE, "5.00"),
        (2, INT, "1.79"),
    )
    assert result.unallocated == 0


def test_overpayment_is_left_unallocated_and_future_installments_are_untouched() -> None:
    # Eligible: 312.41 + 310.71 = 623.12; 1000.00 - 623.12 = 376.88 left as credit.
    for waterfall in (Waterfall(), VERTICAL):
        result = allocate(D("1000.00"), DUES, waterfall, as_of=AS_OF)
        assert result.applied == D("623.12")
        assert result.unallocated == D("376.88")
        assert all(line.installment != 3 for line in result.lines)


def test_installment_due_today_is_eligible() -> None:
    # On 2025-03-15 #3 is due too: 623.12 + 309.91 = 933.03; 1000.00 - 933.03 = 66.97.
    result = allocate(D("1000.00"), DUES, Waterfall(), as_of=date(2025, 3, 15))
    assert result.applied == D("933.03")
    assert result.unallocated == D("66.97")
    assert (3, FEE, D("5.00")) in [(x.installment, x.component, x.amount) for x in result.lines]
    # #3 owes no penalty: no zero line is written for it.
    assert all(line.amount > 0 for line in result.lines)


def test_partial_payment_leaves_interest_unpaid() -> None:
    # 30.00: penalties 3.30 -> 26.70; fees 10.00 -> 16.70; interest of #1 gets 16.70 of 50.00.
    result = allocate(D("30.00"), DUES, Waterfall(), as_of=AS_OF)
    assert result.total(PEN) == D("3.30")
    assert result.total(FEE) == D("10.00")
    assert result.total(INT) == D("16.70")
    assert result.total(PRI) == 0
    assert result.lines[-1] == AllocationLine(1, INT, D("16.70"))


def test_custom_horizontal_order_interest_first() -> None:
    # interest,principal,penalty,fee; 400.00: interest 97.45 -> 302.55;
    # principal #1 254.91 -> 47.64; principal #2 gets 47.64; penalty and fees unpaid.
    waterfall = Waterfall.parse("interest,principal,penalty,fee")
    result = allocate(D("400.00"), DUES, waterfall, as_of=AS_OF)
    assert result.lines == lines(
        (1, INT, "50.00"), (2, INT, "47.45"), (1, PRI, "254.91"), (2, PRI, "47.64")
    )
    assert result.total(PEN) == result.total(FEE) == 0


def test_custom_vertical_order_principal_first() -> None:
    # principal,interest,fee,penalty vertical; 320.00: #1 principal 254.91 -> 65.09;
    # interest 50.00 -> 15.09; fee 5.00 -> 10.09; penalty 2.50 -> 7.59; #2 principal 7.59.
    waterfall = Waterfall.parse("principal,interest,fee,penalty", "vertical")
    result = allocate(D("320.00"), DUES, waterfall, as_of=AS_OF)
    assert result.lines == lines(
        (1, PRI, "254.91"), (1, INT, "50.00"), (1, FEE, "5.00"), (1, PEN, "2.50"), (2, PRI, "7.59")
    )


def test_dues_are_taken_oldest_first_whatever_the_input_order() -> None:
    reversed_dues = tuple(reversed(DUES))
    for waterfall in (Waterfall(), VERTICAL):
        expected = allocate(D("320.00"), DUES, waterfall, as_of=AS_OF)
        assert allocate(D("320.00"), reversed_dues, waterfall, as_of=AS_OF) == expected


def test_nothing_due_leaves_everything_unallocated() -> None:
    result = allocate(D("50.00"), DUES, Waterfall(), as_of=date(2025, 1, 14))
    assert result == Allocation((), D("50.00"))


def test_parse_default_order_and_round_trip() -> None:
    assert Waterfall.parse("penalty,fee,interest,principal") == Waterfall()
    parsed = Waterfall.parse(" Interest , PRINCIPAL,penalty,fee", " Vertical ")
    assert parsed == Waterfall((INT, PRI, PEN, FEE), Strategy.VERTICAL)
    assert parsed.text == "interest,principal,penalty,fee"


@pytest.mark.parametrize(
    ("text", "strategy", "rule"),
    [
        ("penalty,fee,interest,principal,fee", "horizontal", "duplicate-component"),
        ("penalty,fee,interest", "horizontal", "missing-component"),
        ("penalty,fee,interest,capital", "horizontal", "unknown-component"),
        ("penalty,fee,interest,principal", "diagonal", "unknown-strategy"),
    ],
)
def test_parse_rejects_bad_waterfalls(text: str, strategy: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Waterfall.parse(text, strategy)
    assert (caught.value.field, caught.value.rule) == ("waterfall", rule)


def test_constructor_validates_too() -> None:
    with pytest.raises(ValidationFailed):
        Waterfall((PEN, FEE, INT))


@pytest.mark.parametrize("amount", [D("0"), D("-1.00"), D("NaN"), D("Infinity")])
def test_amount_must_be_positive(amount: Decimal) -> None:
    with pytest.raises(ValidationFailed) as caught:
        allocate(amount, DUES, Waterfall(), as_of=AS_OF)
    assert caught.value.field == "amount"


def test_negative_due_is_rejected() -> None:
    bad = Due(1, date(2025, 1, 15), D("0"), D("-1.00"), D("0"), D("0"))
    with pytest.raises(ValidationFailed) as caught:
        allocate(D("10.00"), [bad], Waterfall(), as_of=AS_OF)
    assert caught.value.field == "dues"


# --- properties ------------------------------------------------------------------------------

START = date(2025, 1, 1)
cents = st.integers(0, 1_000_000).map(lambda n: Decimal(n).scaleb(-2))
positive_cents = st.integers(1, 5_000_000).map(lambda n: Decimal(n).scaleb(-2))
waterfalls = st.builds(
    Waterfall, st.permutations(list(Component)).map(tuple), st.sampled_from(Strategy)
)


@st.composite
def schedules(draw: st.DrawFn) -> list[Due]:
    count = draw(st.integers(0, 6))
    return [
        Due(n, START + timedelta(days=30 * n), draw(cents), draw(cents), draw(cents), draw(cents))
        for n in range(1, count + 1)
    ]


as_of_dates = st.integers(0, 240).map(lambda days: START + timedelta(days=days))


def paid_by_key(result: Allocation) -> dict[tuple[int, Component], Decimal]:
    paid: dict[tuple[int, Component], Decimal] = defaultdict(Decimal)
    for line in result.lines:
        paid[line.installment, line.component] += line.amount
    return paid


@given(positive_cents, schedules(), waterfalls, as_of_dates)
def test_conservation(amount: Decimal, dues: list[Due], waterfall: Waterfall, as_of: date) -> None:
    result = allocate(amount, dues, waterfall, as_of=as_of)
    assert result.applied + result.unallocated == amount
    assert result.unallocated >= 0
    assert all(line.amount > 0 for line in result.lines)


@given(positive_cents, schedules(), waterfalls, as_of_dates)
def test_no_component_is_overpaid_and_nothing_future_is_paid(
    amount: Decimal, dues: list[Due], waterfall: Waterfall, as_of: date
) -> None:
    result = allocate(amount, dues, waterfall, as_of=as_of)
    by_number = {due.installment: due for due in dues}
    for (number, component), paid in paid_by_key(result).items():
        due = by_number[number]
        assert due.due_date <= as_of
        assert paid <= getattr(due, component.value)


@given(schedules(), waterfalls, as_of_dates, cents)
def test_enough_money_pays_everything_eligible(
    dues: list[Due], waterfall: Waterfall, as_of: date, extra: Decimal
) -> None:
    eligible = [due for due in dues if due.due_date <= as_of]
    owed = sum((getattr(d, c.value) for d in eligible for c in Component), Decimal(0))
    amount = owed + extra
    if amount == 0:
        return
    result = allocate(amount, dues, waterfall, as_of=as_of)
    paid = paid_by_key(result)
    for due in eligible:
        for component in Component:
            assert paid[due.installment, component] == getattr(due, component.value)
    assert result.unallocated == extra


@given(positive_cents, schedules(), waterfalls, as_of_dates)
def test_lines_follow_the_strategy_and_only_the_last_is_partial(
    amount: Decimal, dues: list[Due], waterfall: Waterfall, as_of: date
) -> None:
    eligible = [due for due in dues if due.due_date <= as_of]  # already oldest first
    rank = {c: i for i, c in enumerate(waterfall.order)}

    def position(line: AllocationLine) -> tuple[int, int]:
        if waterfall.strategy is Strategy.HORIZONTAL:
            return rank[line.component], line.installment
        return line.installment, rank[line.component]

    result = allocate(amount, dues, waterfall, as_of=as_of)
    by_number = {due.installment: due for due in eligible}
    positions = [position(line) for line in result.lines]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for line in result.lines[:-1]:
        assert line.amount == getattr(by_number[line.installment], line.component.value)
    if result.lines:
        # Every step before the last line with something owed was paid in full.
        last = positions[-1]
        for due in eligible:
            for component in Component:
                owed = getattr(due, component.value)
                key = (due.installment, component)
                probe = AllocationLine(due.installment, component, owed)
                if owed > 0 and position(probe) < last:
                    assert paid_by_key(result)[key] == owed
