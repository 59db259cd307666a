"""Five-tier loan classification 五级分类 from days past due, with a manual floor (pure).

Tiers, from best to worst: 正常类 normal (pass), 关注类 special mention, 次级类 substandard,
可疑类 doubtful, 损失类 loss. Substandard, doubtful and loss are non-performing (不良, NPL).

By DPD a loan is at least the worst tier whose threshold it is past (strictly greater than):

    DPD > special_mention_after (0)  -> at least special mention
    DPD > substandard_after    (90)  -> at least substandard
    DPD > doubtful_after       (270) -> at least doubtful
    DPD > loss_after           (360) -> loss

The defaults are the overdue rules of the 商业银行金融资产风险分类办法 (CBIRC and PBoC, published
2023-02-11, in force 2023-07-01): an overdue asset is at least special mention, over 90 days
at least substandard, over 270 days at least doubtful, over 360 days loss. A product may set
its own thresholds (they must increase; looser ones do not meet the Measures). DPD 90 is
special mention and DPD 91 substandard.

The Measures say "at least": judgment may classify worse, never better. `floor` carries that
judgment (e.g. a restructured loan is at least special mention): the result is the worse of
the DPD tier and the floor. There is no way to classify a loan better than its DPD tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from mobilend.core.errors import ValidationFailed


class LoanClass(StrEnum):
    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"

    @property
    def rank(self) -> int:
        """0 for normal up to 4 for loss: a higher rank is a worse loan."""
        return _ORDER.index(self)

    @property
    def is_npl(self) -> bool:
        """Non-performing (不良): substandard, doubtful or loss."""
        return self.rank >= _ORDER.index(LoanClass.SUBSTANDARD)

    def label(self, locale: str = "en") -> str:
        """The tier's name in "en" or "zh-CN"."""
        labels = _LABELS.get(locale)
        if labels is None:
            raise ValidationFailed("locale", "one-of", f"locale must be one of {sorted(_LABELS)}")
        return labels[self]


_ORDER = (
    LoanClass.NORMAL,
    LoanClass.SPECIAL_MENTION,
    LoanClass.SUBSTANDARD,
    LoanClass.DOUBTFUL,
    LoanClass.LOSS,
)
_LABELS = {
    "en": {
        LoanClass.NORMAL: "Normal (pass)",
        LoanClass.SPECIAL_MENTION: "Special mention",
        LoanClass.SUBSTANDARD: "Substandard",
        LoanClass.DOUBTFUL: "Doubtful",
        LoanClass.LOSS: "Loss",
    },
    "zh-CN": {
        LoanClass.NORMAL: "正常类",
        LoanClass.SPECIAL_MENTION: "关注类",
        LoanClass.SUBSTANDARD: "次级类",
        LoanClass.DOUBTFUL: "可疑类",
        LoanClass.LOSS: "损失类",
    },
}


def worst(*classes: LoanClass) -> LoanClass:
    """The worst of the given tiers."""
    if not classes:
        raise ValidationFailed("classes", "non-empty", "worst() needs at least one tier")
    return max(classes, key=lambda c: c.rank)


@dataclass(frozen=True, slots=True)
class ClassificationThresholds:
    """DPD past which (strictly greater) a loan is at least the named tier."""

    special_mention_after: int = 0
    substandard_after: int = 90
    doubtful_after: int = 270
    loss_after: int = 360

    def __post_init__(self) -> None:
        values = self.as_tuple()
        if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            raise ValidationFailed("thresholds", "int", "thresholds must be whole numbers of days")
        if values[0] < 0 or any(b <= a for a, b in pairwise(values)):
            raise ValidationFailed(
                "thresholds",
                "increasing",
                "thresholds must be >= 0 and strictly increasing: "
                f"special mention {values[0]} < substandard {values[1]} < "
                f"doubtful {values[2]} < loss {values[3]}",
            )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (
            self.special_mention_after,
            self.substandard_after,
            self.doubtful_after,
            self.loss_after,
        )


DEFAULT_THRESHOLDS = ClassificationThresholds()  # 2023 Measures: 0 / 90 / 270 / 360


@dataclass(frozen=True, slots=True)
class Classification:
    loan_class: LoanClass  # the result: the worse of by_dpd and floor
    by_dpd: LoanClass
    floor: LoanClass | None
    days_past_due: int

    @property
    def is_npl(self) -> bool:
        return self.loan_class.is_npl

    @property
    def reason(self) -> str:
        """ "floor" when the manual floor made the loan worse than its DPD tier, else "dpd"."""
        return "floor" if self.loan_class is not self.by_dpd else "dpd"


def class_by_dpd(
    days_past_due: int, thresholds: ClassificationThresholds = DEFAULT_THRESHOLDS
) -> LoanClass:
    """The tier DPD alone gives."""
    if not isinstance(days_past_due, int) or isinstance(days_past_due, bool) or days_past_due < 0:
        raise ValidationFailed(
            "days_past_due", "non-negative-int", "DPD must be a whole number >= 0"
        )
    passed = sum(1 for threshold in thresholds.as_tuple() if days_past_due > threshold)
    return _ORDER[passed]


def classify(
    days_past_due: int,
    thresholds: ClassificationThresholds = DEFAULT_THRESHOLDS,
    *,
    floor: LoanClass | None = None,
) -> Classification:
    """The loan's tier: the DPD tier, made worse by `floor` when the floor is worse."""
    by_dpd = class_by_dpd(days_past_due, thresholds)
    result = by_dpd if floor is None else worst(by_dpd, floor)
    return Classification(result, by_dpd, floor, days_past_due)
