"""Five-tier classification 五级分类: boundaries of the 2023 Measures, floors and properties.

Defaults (商业银行金融资产风险分类办法, 2023): overdue -> at least special mention; > 90 days at
least substandard; > 270 at least doubtful; > 360 loss. "More than N days" means DPD N is the
better tier and DPD N + 1 the worse one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilend.core.errors import ValidationFailed
from mobilend.servicing.classification import (
    DEFAULT_THRESHOLDS,
    ClassificationThresholds,
    LoanClass,
    class_by_dpd,
    classify,
    worst,
)
from mobilend.servicing.delinquency import InstallmentDue, days_past_due

C = LoanClass


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (0, C.NORMAL),
        (1, C.SPECIAL_MENTION),
        (90, C.SPECIAL_MENTION),
        (91, C.SUBSTANDARD),
        (270, C.SUBSTANDARD),
        (271, C.DOUBTFUL),
        (360, C.DOUBTFUL),
        (361, C.LOSS),
        (5000, C.LOSS),
    ],
)
def test_default_boundaries(dpd: int, expected: LoanClass) -> None:
    result = classify(dpd)
    assert result.loan_class is expected
    assert result.by_dpd is expected
    assert result.reason == "dpd"
    assert result.is_npl == (dpd > 90)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # Due 2023-12-15: 2024-03-14 is DPD 16 + 31 + 29 + 14 = 90, the next day 91.
        (date(2024, 3, 14), C.SPECIAL_MENTION),
        (date(2024, 3, 15), C.SUBSTANDARD),
    ],
)
def test_from_installments_across_a_leap_february(today: date, expected: LoanClass) -> None:
    schedule = [InstallmentDue(1, date(2023, 12, 15), Decimal("500.00"), Decimal("20.00"))]
    assert classify(days_past_due(schedule, today)).loan_class is expected


def test_loss_boundary_in_a_leap_year() -> None:
    # Due 2024-01-01: 2024-12-26 is day 361 of the year, DPD 360 -> doubtful; 12-27 -> loss.
    schedule = [InstallmentDue(1, date(2024, 1, 1), Decimal("500.00"), Decimal("20.00"))]
    assert classify(days_past_due(schedule, date(2024, 12, 26))).loan_class is C.DOUBTFUL
    assert classify(days_past_due(schedule, date(2024, 12, 27))).loan_class is C.LOSS


@pytest.mark.parametrize(
    ("dpd", "floor", "expected", "reason"),
    [
        (0, C.SPECIAL_MENTION, C.SPECIAL_MENTION, "floor"),  # restructured, current
        (45, C.SPECIAL_MENTION, C.SPECIAL_MENTION, "dpd"),  # floor equal to the DPD tier
        (100, C.SPECIAL_MENTION, C.SUBSTANDARD, "dpd"),  # a floor never improves a loan
        (10, C.DOUBTFUL, C.DOUBTFUL, "floor"),
        (400, C.NORMAL, C.LOSS, "dpd"),
    ],
)
def test_manual_floor_only_downgrades(
    dpd: int, floor: LoanClass, expected: LoanClass, reason: str
) -> None:
    result = classify(dpd, floor=floor)
    assert (result.loan_class, result.floor, result.reason) == (expected, floor, reason)


def test_npl_is_substandard_doubtful_or_loss() -> None:
    assert [c.is_npl for c in LoanClass] == [False, False, True, True, True]
    assert classify(0, floor=C.SUBSTANDARD).is_npl


def test_labels() -> None:
    assert [c.label("zh-CN") for c in LoanClass] == [
        "正常类",
        "关注类",
        "次级类",
        "可疑类",
        "损失类",
    ]
    assert [c.label() for c in LoanClass] == [
        "Normal (pass)", "Special mention", "Substandard", "Doubtful", "Loss",
    ]  # fmt: skip
    with pytest.raises(ValidationFailed):
        C.LOSS.label("fr")


def test_custom_thresholds() -> None:
    # A stricter product: special mention after 3 days' grace, then 60 / 120 / 180.
    strict = ClassificationThresholds(3, 60, 120, 180)
    assert [class_by_dpd(d, strict) for d in (3, 4, 60, 61, 120, 121, 180, 181)] == [
        C.NORMAL, C.SPECIAL_MENTION, C.SPECIAL_MENTION, C.SUBSTANDARD,
        C.SUBSTANDARD, C.DOUBTFUL, C.DOUBTFUL, C.LOSS,
    ]  # fmt: skip
    assert DEFAULT_THRESHOLDS.as_tuple() == (0, 90, 270, 360)


@pytest.mark.parametrize(
    "values",
    [
        (0, 90, 90, 360),
        (0, 270, 90, 360),
        (-1, 90, 270, 360),
        (0, 90, 270, 270),
        (0, 90.0, 270, 360),
    ],
)
def test_thresholds_must_increase(values: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ClassificationThresholds(*values)
    assert caught.value.field == "thresholds"


@pytest.mark.parametrize("dpd", [-1, True, 1.0])
def test_dpd_must_be_a_whole_number(dpd: int) -> None:
    with pytest.raises(ValidationFailed):
        classify(dpd)


def test_worst() -> None:
    assert worst(C.NORMAL, C.DOUBTFUL, C.SPECIAL_MENTION) is C.DOUBTFUL
    with pytest.raises(ValidationFailed):
        worst()


thresholds = st.lists(
    st.integers(min_value=0, max_value=1000), min_size=4, max_size=4, unique=True
).map(lambda v: ClassificationThresholds(*sorted(v)))


@given(thresholds, st.integers(0, 2000), st.integers(0, 2000))
def test_classification_never_improves_as_dpd_grows(
    limits: ClassificationThresholds, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert class_by_dpd(low, limits).rank <= class_by_dpd(high, limits).rank


@given(st.integers(0, 2000), st.sampled_from(list(LoanClass)))
def test_result_is_the_worse_of_dpd_tier_and_floor(dpd: int, floor: LoanClass) -> None:
    result = classify(dpd, floor=floor)
    assert result.loan_class.rank == max(result.by_dpd.rank, floor.rank)
