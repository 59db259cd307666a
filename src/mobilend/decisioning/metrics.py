"""Discrimination and stability metrics for credit models (pure numpy).

Conventions: `y_bad` is 1 for a bad loan, 0 for a good one; `risk` is any score that is higher
for riskier applicants (a probability of default). Pass `-score` for a points score.

- AUC: the probability that a random bad is ranked riskier than a random good, ties counting
  one half (Mann-Whitney U with average ranks).
- Gini = 2 AUC - 1.
- KS: the largest gap between the cumulative distributions of bads and goods over the risk
  score, evaluated at every distinct score value (so tied scores move together).
- PSI = sum over bins of (a - e) ln(a / e), with e and a the shares of the expected (baseline)
  and actual (recent) populations in each bin. Numeric bins are the expected sample's
  quantiles (`bins` equal-frequency bins; repeated edges merge, so a discrete variable may get
  fewer); a value v is in bin i when edge[i-1] <= v < edge[i]; missing values form their own
  bin. Categorical bins are the categories seen in either sample. A bin empty in one sample
  gets the share `eps` (default 1e-4) instead of 0, so the log stays finite.
- Stability: PSI < 0.10 "stable", 0.10 <= PSI <= 0.25 "watch", PSI > 0.25 "act".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PSI_EPS = 1e-4
PSI_WATCH = 0.10
PSI_ACT = 0.25


def _labels_and_scores(y_bad: Any, risk: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_bad).astype(bool).ravel()
    s = np.asarray(risk, dtype="float64").ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_bad has {y.size} values but risk has {s.size}")
    if np.isnan(s).any():
        raise ValueError("risk scores contain NaN")
    if y.all() or not y.any():
        raise ValueError("need both bad and good cases")
    return y, s


def average_ranks(values: Any) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their positions."""
    v = np.asarray(values, dtype="float64").ravel()
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse]


def auc(y_bad: Any, risk: Any) -> float:
    y, s = _labels_and_scores(y_bad, risk)
    ranks = average_ranks(s)
    n_bad = int(y.sum())
    n_good = y.size - n_bad
    u = ranks[y].sum() - n_bad * (n_bad + 1) / 2.0
    return float(u / (n_bad * n_good))


def gini(y_bad: Any, risk: Any) -> float:
    return 2.0 * auc(y_bad, risk) - 1.0


def ks(y_bad: Any, risk: Any) -> float:
    y, s = _labels_and_scores(y_bad, risk)
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    cum_bad = np.cumsum(y_sorted) / y.sum()
    cum_good = np.cumsum(~y_sorted) / (~y).sum()
    # evaluate only after the last of each run of tied scores
    last_of_value = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    return float(np.max(np.abs(cum_bad - cum_good)[last_of_value]))


def psi_from_shares(expected: Any, actual: Any, eps: float = PSI_EPS) -> float:
    """PSI from the two samples' shares (or counts) per bin, with `eps` for empty bins."""
    e = np.asarray(expected, dtype="float64")
    a = np.asarray(actual, dtype="float64")
    if e.shape != a.shape:
        raise ValueError("expected and actual need the same bins")
    e = e / e.sum()
    a = a / a.sum()
    e = np.where(e > 0, e, eps)
    a = np.where(a > 0, a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(expected: Any, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the expected sample's quantiles at 1/bins, ..., (bins-1)/bins."""
    e = np.asarray(expected, dtype="float64")
    e = e[~np.isnan(e)]
    if e.size == 0:
        return np.array([], dtype="float64")
    qs = np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    nan = np.isnan(values)
    idx = np.searchsorted(edges, values[~nan], side="right")
    counts = np.bincount(idx, minlength=edges.size + 1).astype("float64")
    out: np.ndarray = np.r_[counts, nan.sum()]
    return out


def psi(expected: Any, actual: Any, bins: int = 10, eps: float = PSI_EPS) -> float:
    """PSI of a numeric variable over the expected sample's quantile bins."""
    e = np.asarray(expected, dtype="float64").ravel()
    a = np.asarray(actual, dtype="float64").ravel()
    edges = quantile_edges(e, bins)
    return psi_from_shares(_numeric_counts(e, edges), _numeric_counts(a, edges), eps)


def psi_categorical(expected: Any, actual: Any, eps: float = PSI_EPS) -> float:
    """PSI of a categorical variable: one bin per category, one for missing."""
    e = _category_labels(expected)
    a = _category_labels(actual)
    levels = np.unique(np.r_[e, a])
    e_counts = np.array([(e == v).sum() for v in levels], dtype="float64")
    a_counts = np.array([(a == v).sum() for v in levels], dtype="float64")
    return psi_from_shares(e_counts, a_counts, eps)


def _category_labels(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=object).ravel()
    out = np.array(["\x00missing" if _is_missing(v) else str(v) for v in arr], dtype=object)
    return out.astype(str)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def feature_psi(
    expected: Any,
    actual: Any,
    categorical: Sequence[str] = (),
    bins: int = 10,
    eps: float = PSI_EPS,
) -> dict[str, float]:
    """PSI per column of two data frames (numeric by quantile bins, `categorical` by level)."""
    cats = set(categorical)
    out = {}
    for col in expected.columns:
        if col not in actual.columns:
            raise ValueError(f"column {col!r} missing from the actual sample")
        e, a = expected[col].to_numpy(), actual[col].to_numpy()
        is_cat = col in cats or e.dtype == object or str(expected[col].dtype) == "category"
        out[str(col)] = psi_categorical(e, a, eps) if is_cat else psi(e, a, bins, eps)
    return out


def stability(value: float) -> str:
    """'stable' below 0.10, 'watch' from 0.10 to 0.25, 'act' above 0.25."""
    if value < PSI_WATCH:
        return "stable"
    if value <= PSI_ACT:
        return "watch"
    return "act"


def summarize(y_bad: Any, risk: Any) -> dict[str, float]:
    a = auc(y_bad, risk)
    return {"auc": a, "ks": ks(y_bad, risk), "gini": 2.0 * a - 1.0}
