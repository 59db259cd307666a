"""Portfolio analytics: roll rates, vintage curves, PAR30, NPL ratio, collection rate by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.analytics.portfolio import (
    CLOSED,
    DPD_BUCKETS,
    BucketRow,
    CohortLoan,
    InstallmentDue,
    LoanPosition,
    MonthOnBook,
    collection_rate,
    dpd_bucket,
    months_on_book,
    npl_ratio,
    par,
    par30,
    roll_rates,
    vintage_curves,
)
from mobilend.core.errors import ValidationFailed

D = Decimal

# --- roll rates: 10 loans at the end of February and of March ---------------------------------
#
#  loan  Feb bucket  Feb balance  Mar bucket
#  L1    current     1,000        current
#  L2    current     2,000        current
#  L3    current     1,500        1-29
#  L4    current       500        (paid off: closed)
#  L5    1-29          800        current      (cured)
#  L6    1-29        1,200        30-59
#  L7    1-29        1,000        1-29
#  L8    30-59         600        60-89
#  L9    60-89         400        90+
#  L10   90+           300        90+
#  L11   (new in March, 2,500, current): not in the matrix
FEB = [
    BucketRow("L1", "current", D("1000")),
    BucketRow("L2", "current", D("2000")),
    BucketRow("L3", "current", D("1500")),
    BucketRow("L4", "current", D("500")),
    BucketRow("L5", "1-29", D("800")),
    BucketRow("L6", "1-29", D("1200")),
    BucketRow("L7", "1-29", D("1000")),
    BucketRow("L8", "30-59", D("600")),
    BucketRow("L9", "60-89", D("400")),
    BucketRow("L10", "90+", D("300")),
]
MAR = [
    BucketRow("L1", "current", D("900")),
    BucketRow("L2", "current", D("1800")),
    BucketRow("L3", "1-29", D("1500")),
    BucketRow("L5", "current", D("600")),
    BucketRow("L6", "30-59", D("1200")),
    BucketRow("L7", "1-29", D("1000")),
    BucketRow("L8", "60-89", D("600")),
    BucketRow("L9", "90+", D("400")),
    BucketRow("L10", "90+", D("300")),
    BucketRow("L11", "current", D("2500")),
]


def test_roll_rate_counts_and_balances() -> None:
    result = roll_rates(FEB, MAR)
    assert result.columns == (*DPD_BUCKETS, CLOSED)
    assert result.counts["current"] == {
        "current": 2, "1-29": 1, "30-59": 0, "60-89": 0, "90+": 0, "closed": 1
    }  # fmt: skip
    assert result.balances["current"]["current"] == D("3000")  # L1 + L2, February balances
    assert result.balances["1-29"]["30-59"] == D("1200")
    assert (result.new_count, result.new_balance) == (1, D("2500"))


def test_roll_rates_by_balance() -> None:
    rates = roll_rates(FEB, MAR).rates
    # current: 5,000 in February -> 3,000 stay (0.6), 1,500 roll (0.3), 500 closed (0.1)
    assert rates["current"]["current"] == D("0.6000")
    assert rates["current"]["1-29"] == D("0.3000")
    assert rates["current"][CLOSED] == D("0.1000")
    # 1-29: 3,000 -> 800 cured (0.26667), 1,000 stay (0.33333), 1,200 roll to 30-59 (0.4)
    assert rates["1-29"]["current"] == D("0.2667")
    assert rates["1-29"]["1-29"] == D("0.3333")
    assert rates["1-29"]["30-59"] == D("0.4000")
    assert rates["30-59"]["60-89"] == D("1.0000")
    assert rates["60-89"]["90+"] == D("1.0000")
    assert rates["90+"]["90+"] == D("1.0000")
    assert rates["90+"]["current"] == D("0.0000")


def test_roll_rates_by_count_round_by_largest_remainder() -> None:
    count_rates = roll_rates(FEB, MAR).count_rates
    assert count_rates["current"]["current"] == D("0.5000")  # 2 of 4
    assert count_rates["current"]["1-29"] == D("0.2500")
    # 1 of 3 in each of three columns: 0.3333 x 3 = 0.9999, the last 0.0001 goes to the
    # leftmost of the tied remainders, so the row still sums to 1.
    row = count_rates["1-29"]
    assert (row["current"], row["1-29"], row["30-59"]) == (D("0.3334"), D("0.3333"), D("0.3333"))


def test_an_empty_previous_bucket_has_no_rates() -> None:
    result = roll_rates([BucketRow("A", "current", D("100"))], [])
    assert result.rates["30-59"] == dict.fromkeys(result.columns, None)
    assert result.rates["current"][CLOSED] == D("1.0000")
    zero = roll_rates([BucketRow("A", "1-29", D("0"))], [BucketRow("A", "current", D("0"))])
    assert zero.rates["1-29"]["current"] is None  # no balance to share out
    assert zero.count_rates["1-29"]["current"] == D("1.0000")


@pytest.mark.parametrize(
    ("previous", "current", "rule"),
    [
        ([BucketRow("A", "120+", D("1"))], [], "bucket"),
        ([BucketRow("A", "current", D("1"))] * 2, [], "unique-loan"),
    ],
)
def test_bad_snapshots(previous: list[BucketRow], current: list[BucketRow], rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        roll_rates(previous, current)
    assert caught.value.rule == rule


def test_custom_buckets() -> None:
    rows = [BucketRow("A", "M0", D("10")), BucketRow("B", "M1", D("30"))]
    after = [BucketRow("A", "M1", D("10")), BucketRow("B", "M1", D("30"))]
    result = roll_rates(rows, after, buckets=("M0", "M1"))
    assert result.rates["M0"] == {"M0": D("0.0000"), "M1": D("1.0000"), CLOSED: D("0.0000")}
    with pytest.raises(ValidationFailed):
        roll_rates(rows, after, buckets=("M0", CLOSED))


@pytest.mark.parametrize(
    ("dpd", "bucket"), [(0, "current"), (1, "1-29"), (29, "1-29"), (30, "30-59"), (90, "90+")]
)
def test_dpd_bucket(dpd: int, bucket: str) -> None:
    assert dpd_bucket(dpd) == bucket


SNAPSHOT = st.dictionaries(
    st.sampled_from([f"L{i}" for i in range(12)]),
    st.tuples(st.sampled_from(DPD_BUCKETS), st.integers(0, 10**7).map(lambda c: D(c).scaleb(-2))),
    max_size=12,
)


@given(before=SNAPSHOT, after=SNAPSHOT)
def test_roll_rate_rows_sum_to_one(
    before: dict[str, tuple[str, Decimal]], after: dict[str, tuple[str, Decimal]]
) -> None:
    previous = [BucketRow(k, b, v) for k, (b, v) in before.items()]
    current = [BucketRow(k, b, v) for k, (b, v) in after.items()]
    result = roll_rates(previous, current)
    for row in result.rows:
        total = sum(result.balances[row].values(), D(0))
        shares = result.rates[row]
        if total == 0:
            assert set(shares.values()) == {None}
            continue
        assert sum((s for s in shares.values() if s is not None), D(0)) == D("1.0000")
        for column, share in shares.items():
            assert share is not None
            assert abs(share - result.balances[row][column] / total) < D("0.0001")
        count_total = sum(result.counts[row].values())
        count_shares = [s for s in result.count_rates[row].values() if s is not None]
        assert count_total > 0 and sum(count_shares, D(0)) == D("1.0000")


# --- vintage curves: two cohorts ---------------------------------------------------------------
#
#  cohort 2026-01 (4,000, 3 loans)          cohort 2026-02 (4,000, 2 loans)
#  loan  principal  MOB1  MOB2  MOB3         loan  principal  MOB1  MOB2
#  A     1,000      0     35    65           D     3,000      0     40
#  B     2,000      0     0     30           E     1,000      5     0
#  C     1,000      31    0     (paid off)
LOANS = [
    CohortLoan("A", date(2026, 1, 15), D("1000")),
    CohortLoan("B", date(2026, 1, 20), D("2000")),
    CohortLoan("C", date(2026, 1, 31), D("1000")),
    CohortLoan("D", date(2026, 2, 3), D("3000")),
    CohortLoan("E", date(2026, 2, 27), D("1000")),
]
DPD_BY_MOB = {
    "A": [0, 35, 65],
    "B": [0, 0, 30],
    "C": [31, 0],
    "D": [0, 40],
    "E": [5, 0],
}
OBSERVED = [
    MonthOnBook(loan_id, mob, dpd)
    for loan_id, days in DPD_BY_MOB.items()
    for mob, dpd in enumerate(days, start=1)
]


def test_vintage_point_in_time() -> None:
    table = vintage_curves(LOANS, OBSERVED)
    assert table.cohorts == ("2026-01", "2026-02")
    assert table.principal == {"2026-01": D("4000"), "2026-02": D("4000")}
    assert table.loans == {"2026-01": 3, "2026-02": 2}
    # 2026-01: MOB1 C (1,000); MOB2 A (1,000); MOB3 A + B (3,000; B at exactly 30 counts)
    assert table.amount_share["2026-01"] == {1: D("0.2500"), 2: D("0.2500"), 3: D("0.7500")}
    assert table.count_share["2026-01"] == {1: D("0.3333"), 2: D("0.3333"), 3: D("0.6667")}
    # 2026-02: MOB1 nobody (E is 5 days late); MOB2 D (3,000 of 4,000; 1 of 2 loans)
    assert table.amount_share["2026-02"] == {1: D("0.0000"), 2: D("0.7500")}
    assert table.count_share["2026-02"] == {1: D("0.0000"), 2: D("0.5000")}


def test_vintage_ever_30_plus() -> None:
    table = vintage_curves(LOANS, OBSERVED, cumulative=True)
    # C stays counted after curing: MOB2 A + C = 2,000; MOB3 A + B + C = 4,000
    assert table.amount_share["2026-01"] == {1: D("0.2500"), 2: D("0.5000"), 3: D("1.0000")}
    assert table.count_share["2026-01"] == {1: D("0.3333"), 2: D("0.6667"), 3: D("1.0000")}


def test_vintage_at_60_days() -> None:
    table = vintage_curves(LOANS, OBSERVED, threshold_days=60)
    assert table.amount_share["2026-01"] == {1: D("0.0000"), 2: D("0.0000"), 3: D("0.2500")}


def test_vintage_rejects_unknown_or_repeated_observations() -> None:
    with pytest.raises(ValidationFailed) as caught:
        vintage_curves(LOANS, [MonthOnBook("Z", 1, 0)])
    assert caught.value.rule == "known-loan"
    with pytest.raises(ValidationFailed) as caught:
        vintage_curves(LOANS, [MonthOnBook("A", 1, 0), MonthOnBook("A", 1, 3)])
    assert caught.value.rule == "unique"


@pytest.mark.parametrize(
    ("disbursed", "as_of", "mob"),
    [
        (date(2026, 1, 15), date(2026, 1, 31), 0),
        (date(2026, 1, 31), date(2026, 2, 1), 1),
        (date(2025, 12, 10), date(2026, 3, 1), 3),
    ],
)
def test_months_on_book(disbursed: date, as_of: date, mob: int) -> None:
    assert months_on_book(disbursed, as_of) == mob


def test_months_on_book_before_disbursement() -> None:
    with pytest.raises(ValidationFailed):
        months_on_book(date(2026, 1, 15), date(2026, 1, 14))


# --- PAR30 and NPL ratio ----------------------------------------------------------------------
#
#  loan  outstanding  DPD  classification
#  P1    5,000.00       0  pass
#  P2    3,000.00      15  special_mention
#  P3    1,200.50      30  special_mention
#  P4      800.00      95  substandard
#  P5      600.00     200  doubtful
#  P6      399.50     400  loss
#  total 11,000.00; 30+ DPD 3,000.00; substandard + doubtful + loss 1,799.50
BOOK = [
    LoanPosition(D("5000.00"), 0, "pass"),
    LoanPosition(D("3000.00"), 15, "special_mention"),
    LoanPosition(D("1200.50"), 30, "special_mention"),
    LoanPosition(D("800.00"), 95, "substandard"),
    LoanPosition(D("600.00"), 200, "doubtful"),
    LoanPosition(D("399.50"), 400, "loss"),
]


def test_par30() -> None:
    assert par30(BOOK) == D("0.2727")  # 3,000 / 11,000 = 0.272727...
    assert par(BOOK, days=1) == D("0.5455")  # 6,000 / 11,000 = 0.545454...
    assert par(BOOK, days=90) == D("0.1636")


def test_npl_ratio() -> None:
    assert npl_ratio(BOOK) == D("0.1636")  # 1,799.50 / 11,000 = 0.163590...


def test_ratios_round_half_even() -> None:
    # 1 / 32 = 0.03125 exactly: half-even gives 0.0312 (half-up would give 0.0313).
    book = [LoanPosition(D("1.00"), 30), LoanPosition(D("31.00"), 0)]
    assert par30(book) == D("0.0312")


def test_empty_denominators_give_none() -> None:
    assert par30([]) is None
    assert par30([LoanPosition(D("0"), 45)]) is None
    assert npl_ratio([]) is None


def test_npl_needs_every_classification() -> None:
    with pytest.raises(ValidationFailed) as caught:
        npl_ratio([LoanPosition(D("10"), 100)])
    assert (caught.value.field, caught.value.rule) == ("classification", "required")
    with pytest.raises(ValidationFailed):
        LoanPosition(D("10"), 0, "grade-b")


# --- collection rate --------------------------------------------------------------------------

INSTALLMENTS = [
    InstallmentDue(date(2026, 2, 28), D("700"), D("0")),  # February: outside
    InstallmentDue(date(2026, 3, 5), D("1000"), D("1000")),
    InstallmentDue(date(2026, 3, 15), D("1000"), D("400")),
    InstallmentDue(date(2026, 3, 31), D("500"), D("0")),
    InstallmentDue(date(2026, 4, 1), D("1000"), D("1000")),  # April: outside
]


def test_collection_rate_for_march() -> None:
    # due 1,000 + 1,000 + 500 = 2,500; collected 1,000 + 400 = 1,400; 1,400 / 2,500 = 0.56
    march = collection_rate(INSTALLMENTS, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert march == D("0.5600")
    day = collection_rate(INSTALLMENTS, start=date(2026, 3, 15), end=date(2026, 3, 15))
    assert day == D("0.4000")
    assert collection_rate(INSTALLMENTS, start=date(2026, 5, 1), end=date(2026, 5, 31)) is None


def test_collection_rate_inputs() -> None:
    with pytest.raises(ValidationFailed) as caught:
        InstallmentDue(date(2026, 3, 5), D("100"), D("100.01"))
    assert caught.value.rule == "not-above-due"
    with pytest.raises(ValidationFailed):
        collection_rate(INSTALLMENTS, start=date(2026, 3, 31), end=date(2026, 3, 1))
