"""Reason codes: the texts, the ranking, and the prediction record that carries them.

A reason is a dict {"code", "feature", "en", "zh", "impact"}. The code is the characteristic's
column name (stable as long as the feature keeps its name); "impact" is how far the applicant
is from the best outcome on that characteristic, in the model's own unit: scorecard points
below the characteristic's best bin, or the gbdt's log-odds contribution toward default.
Up to four reasons per applicant, largest impact first, only those with impact > 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MAX_REASONS = 4
MIN_IMPACT = 1e-9

TEXTS: dict[str, dict[str, str]] = {
    # German credit (dmba layout)
    "CHK_ACCT": {"en": "Checking account status", "zh": "支票账户状态"},
    "DURATION": {"en": "Loan duration", "zh": "贷款期限"},
    "HISTORY": {"en": "Credit history", "zh": "信用记录"},
    "NEW_CAR": {"en": "Loan purpose: new car", "zh": "贷款用途：新车"},
    "USED_CAR": {"en": "Loan purpose: used car", "zh": "贷款用途：二手车"},
    "FURNITURE": {"en": "Loan purpose: furniture", "zh": "贷款用途：家具"},
    "RADIO/TV": {"en": "Loan purpose: radio or TV", "zh": "贷款用途：电器"},
    "EDUCATION": {"en": "Loan purpose: education", "zh": "贷款用途：教育"},
    "RETRAINING": {"en": "Loan purpose: retraining", "zh": "贷款用途：职业培训"},
    "AMOUNT": {"en": "Loan amount", "zh": "贷款金额"},
    "SAV_ACCT": {"en": "Savings balance", "zh": "储蓄余额"},
    "EMPLOYMENT": {"en": "Length of present employment", "zh": "当前工作年限"},
    "INSTALL_RATE": {"en": "Installment as share of income", "zh": "月供占可支配收入比例"},
    "MALE_DIV": {"en": "Personal status", "zh": "个人状况"},
    "MALE_SINGLE": {"en": "Personal status", "zh": "个人状况"},
    "MALE_MAR_or_WID": {"en": "Personal status", "zh": "个人状况"},
    "CO-APPLICANT": {"en": "Co-applicant", "zh": "共同申请人"},
    "GUARANTOR": {"en": "Guarantor", "zh": "担保人"},
    "PRESENT_RESIDENT": {"en": "Time at present address", "zh": "现住址居住年限"},
    "REAL_ESTATE": {"en": "Real estate ownership", "zh": "不动产情况"},
    "PROP_UNKN_NONE": {"en": "No known property", "zh": "无已知财产"},
    "AGE": {"en": "Age", "zh": "年龄"},
    "OTHER_INSTALL": {"en": "Other installment plans", "zh": "其他分期付款"},
    "RENT": {"en": "Housing: renting", "zh": "住房：租房"},
    "OWN_RES": {"en": "Housing: own residence", "zh": "住房：自有住房"},
    "NUM_CREDITS": {"en": "Number of existing credits", "zh": "现有贷款笔数"},
    "JOB": {"en": "Job category", "zh": "职业类别"},
    "NUM_DEPENDENTS": {"en": "Number of dependents", "zh": "受抚养人数"},
    "TELEPHONE": {"en": "Telephone on record", "zh": "登记电话"},
    "FOREIGN": {"en": "Foreign worker", "zh": "外籍劳工"},
}


def text(feature: str) -> dict[str, str]:
    """The en/zh text for a feature; an unknown feature falls back to its column name."""
    known = TEXTS.get(feature)
    return dict(known) if known else {"en": feature, "zh": feature}


def reason_code(feature: str) -> str:
    return feature


def top_reasons(impacts: np.ndarray, k: int = MAX_REASONS) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the k largest positive impacts (-1 = none) and the impacts.

    Ties keep column order (stable sort), so the result is deterministic.
    """
    impacts = np.asarray(impacts, dtype="float64")
    k = min(k, impacts.shape[1])
    order = np.argsort(-impacts, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(impacts, order, axis=1)
    keep = top > MIN_IMPACT
    return np.where(keep, order, -1), np.where(keep, top, 0.0)


class Predictions:
    """Batch output of a model: numpy arrays `pd` and `score`, and `reasons` per row.

    pd and score are computed at once (vectorised). Reasons are computed on first access,
    from a per-feature impact matrix (n x features) the model supplies: `reason_index`
    (n x 4 feature indices, -1 = none) and `reason_impact`, then `reasons` (the list of
    reason dicts per row) or `reason_codes()` (codes joined by ";", vectorised). So a batch
    that needs only pd and score never pays for explanations (gbdt SHAP values are costly).
    """

    def __init__(
        self,
        pd: np.ndarray,
        score: np.ndarray,
        features: list[str],
        impacts: Callable[[], np.ndarray] | np.ndarray,
    ) -> None:
        self.pd = pd
        self.score = score
        self.features = list(features)
        self._impacts = impacts
        self._top: tuple[np.ndarray, np.ndarray] | None = None
        self._reasons: list[list[dict[str, Any]]] | None = None

    def __len__(self) -> int:
        return int(self.pd.shape[0])

    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        if self._top is None:
            impacts = self._impacts() if callable(self._impacts) else self._impacts
            self._top = top_reasons(impacts)
            self._impacts = np.empty((0, 0))  # release the matrix (and what it closed over)
        return self._top

    @property
    def reason_index(self) -> np.ndarray:
        return self._ranked()[0]

    @property
    def reason_impact(self) -> np.ndarray:
        return self._ranked()[1]

    @property
    def reasons(self) -> list[list[dict[str, Any]]]:
        if self._reasons is None:
            texts = [text(f) for f in self.features]
            index, impact = self._ranked()
            rows: list[list[dict[str, Any]]] = []
            for idx_row, imp_row in zip(index.tolist(), impact.tolist(), strict=True):
                rows.append(
                    [
                        {
                            "code": reason_code(self.features[j]),
                            "feature": self.features[j],
                            "en": texts[j]["en"],
                            "zh": texts[j]["zh"],
                            "impact": round(v, 4),
                        }
                        for j, v in zip(idx_row, imp_row, strict=True)
                        if j >= 0
                    ]
                )
            self._reasons = rows
        return self._reasons

    def reason_codes(self, sep: str = ";") -> np.ndarray:
        """Per row, the reason codes joined by `sep` ("" when there is none), vectorised."""
        codes = np.array([reason_code(f) for f in self.features] + [""], dtype=object)
        picked = codes[self.reason_index]  # -1 picks the trailing ""
        if picked.shape[1] == 0:
            return np.full(len(self), "", dtype=object)
        out = picked[:, 0].astype(str)
        for c in range(1, picked.shape[1]):
            col = picked[:, c].astype(str)
            out = np.where(col == "", out, np.char.add(np.char.add(out, sep), col))
        return np.asarray(out, dtype=object)
