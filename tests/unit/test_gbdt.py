"""LightGBM challenger: determinism, scaling of its pd, SHAP reason codes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mobilend.decisioning.datasets import german_credit, german_schema
from mobilend.decisioning.gbdt import GradientBoosting
from mobilend.decisioning.training import cross_validate, train

SMALL = {"n_estimators": 60, "learning_rate": 0.08}


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.Series]:
    return german_credit()


@pytest.fixture(scope="module")
def model(german: tuple[pd.DataFrame, pd.Series]) -> GradientBoosting:
    X, y = german
    m = train("gbdt", X, y, schema=german_schema(X), cv=False, folds=3, **SMALL)
    assert isinstance(m, GradientBoosting)
    return m


def test_deterministic(model: GradientBoosting, german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    again = train("gbdt", X, y, schema=german_schema(X), cv=False, folds=3, **SMALL)
    np.testing.assert_array_equal(model.predict(X).pd, again.predict(X).pd)


def test_score_is_the_points_scaling_of_pd(
    model: GradientBoosting, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    p = model.predict(german[0].head(100))
    assert ((p.pd > 0) & (p.pd < 1)).all()
    # 600 + 20/ln2 * (ln(good:bad) - ln 50), written out by hand
    hand = [600 + 20 / math.log(2) * (math.log((1 - q) / q) - math.log(50)) for q in p.pd]
    np.testing.assert_allclose(p.score, hand, rtol=0, atol=1e-9)


def test_reasons_are_the_largest_positive_shap_values(
    model: GradientBoosting, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    X = german[0].head(200)
    p = model.predict(X)
    contrib = model.booster.predict(model._matrix(model.schema.coerce(X)), pred_contrib=True)  # type: ignore[union-attr]
    # SHAP values add up to the raw log-odds of default
    raw = model.booster.predict(model._matrix(model.schema.coerce(X)), raw_score=True)  # type: ignore[union-attr]
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-9)
    names = model.schema.names  # type: ignore[union-attr]
    for i, reasons in enumerate(p.reasons):
        shap = contrib[i, :-1]
        expected = [names[j] for j in np.argsort(-shap, kind="stable")[:4] if shap[j] > 0]
        assert [r["feature"] for r in reasons] == expected
        assert len(reasons) <= 4


def test_cv_auc_is_reasonable(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    report = cross_validate("gbdt", X, y, folds=3, seed=0, schema=german_schema(X), **SMALL)
    assert len(report.per_fold) == 3
    assert 0.74 <= report.mean["auc"] <= 0.85
