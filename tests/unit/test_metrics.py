"""Metrics against sklearn/scipy and hand calculations written out here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from mobilend.decisioning import metrics


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 2000)
    risk = np.round(rng.normal(size=2000) + 0.8 * y, 1)  # rounding makes many ties
    assert metrics.auc(y, risk) == pytest.approx(roc_auc_score(y, risk), abs=1e-12)


def test_auc_hand_example() -> None:
    # bad/good pairs: (0.9,0.8) right, (0.9,0.3) right, (0.4,0.8) wrong, (0.4,0.3) right
    y = [1, 0, 1, 0]
    risk = [0.9, 0.8, 0.4, 0.3]
    assert metrics.auc(y, risk) == pytest.approx(0.75)
    assert metrics.gini(y, risk) == pytest.approx(0.5)
    assert metrics.auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half


def test_ks_hand_example() -> None:
    # ascending risk 0.3 good, 0.4 bad, 0.8 good, 0.9 bad:
    # cumulative bad 0, .5, .5, 1; cumulative good .5, .5, 1, 1 -> largest gap 0.5
    assert metrics.ks([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.3]) == pytest.approx(0.5)
    assert metrics.ks([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)
    # tied scores move together: one bad and one good at the same score give no gap
    assert metrics.ks([1, 0], [0.5, 0.5]) == pytest.approx(0.0)


def test_ks_matches_scipy_two_sample_statistic() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1500)
    risk = np.round(rng.normal(size=1500) + 0.5 * y, 2)
    expected = ks_2samp(risk[y == 1], risk[y == 0]).statistic
    assert metrics.ks(y, risk) == pytest.approx(expected, abs=1e-12)


def test_psi_hand_example_quantile_bins() -> None:
    expected = np.arange(100.0)  # quartile edges 24.75, 49.5, 74.25: 25 values per bin
    actual = np.r_[np.full(40, 10.0), np.full(30, 30.0), np.full(20, 60.0), np.full(10, 90.0)]
    e, a = [0.25] * 4, [0.4, 0.3, 0.2, 0.1]
    hand = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert metrics.psi(expected, actual, bins=4) == pytest.approx(hand, abs=1e-12)
    assert metrics.psi(expected, expected, bins=4) == pytest.approx(0.0)


def test_psi_empty_bin_uses_epsilon() -> None:
    # expected shares 0.5/0.5, actual 1.0/0.0 -> the empty share becomes 1e-4
    hand = (1.0 - 0.5) * math.log(1.0 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert metrics.psi_from_shares([50, 50], [10, 0]) == pytest.approx(hand, abs=1e-12)


def test_psi_categorical_and_per_feature() -> None:
    exp = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50, "x": np.arange(100.0)})
    act = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20, "x": np.arange(100.0)})
    hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    out = metrics.feature_psi(exp, act, categorical=["c"], bins=4)
    assert out["c"] == pytest.approx(hand, abs=1e-12)
    assert out["x"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("value", "label"),
    [(0.0, "stable"), (0.0999, "stable"), (0.10, "watch"), (0.25, "watch"), (0.2501, "act")],
)
def test_stability_labels(value: float, label: str) -> None:
    assert metrics.stability(value) == label
