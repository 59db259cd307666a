"""TrainedModel.predict_row: the same pd, score and reasons as predict on a one-row frame."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.datasets import german_credit, german_schema
from mobilend.decisioning.scorecard import TrainedModel
from mobilend.decisioning.training import train

SMALL_GBDT = {"n_estimators": 60, "learning_rate": 0.08}


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.Series]:
    return german_credit()


@pytest.fixture(scope="module", params=["scorecard", "gbdt"])
def model(request: pytest.FixtureRequest, german: tuple[pd.DataFrame, pd.Series]) -> TrainedModel:
    X, y = german
    extra = SMALL_GBDT if request.param == "gbdt" else {}
    return train(request.param, X, y, schema=german_schema(X), cv=False, folds=3, **extra)


def rows(X: pd.DataFrame) -> list[dict[str, Any]]:
    """The first 50 German credit rows as plain dicts, every fifth with gaps: missing values
    (None and NaN), an unseen category, a category given as a float code and a number as a
    string-free numpy scalar."""
    out = []
    for i, rec in enumerate(X.head(50).astype(object).to_dict("records")):
        row: dict[str, Any] = dict(rec)
        if i % 5 == 1:
            row.update(CHK_ACCT=None, AGE=None, DURATION=np.nan)
        elif i % 5 == 2:
            row.update(HISTORY="9", JOB=np.nan)  # "9": a HISTORY code never seen in training
        elif i % 5 == 3:
            row.update(EMPLOYMENT=float(row["EMPLOYMENT"]), AMOUNT=np.float32(row["AMOUNT"]))
        elif i % 5 == 4:
            row.update(SAV_ACCT=77, PRESENT_RESIDENT=None, NUM_CREDITS=True)  # 77 unseen
        out.append(row)
    return out


def test_predict_row_equals_predict_on_a_one_row_frame(
    model: TrainedModel, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    for row in rows(german[0]):
        fast = model.predict_row(row)
        slow = model.predict(pd.DataFrame([row]))
        assert (fast.pd, fast.score) == (slow.pd[0], slow.score[0])  # exactly equal
        assert fast.reasons == slow.reasons[0]
        assert isinstance(fast.pd, float) and isinstance(fast.score, float)


def test_predict_row_equals_the_batch(
    model: TrainedModel, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    X = german[0].head(50)
    batch = model.predict(X)
    for i, row in enumerate(X.to_dict("records")):
        fast = model.predict_row(row)
        assert fast.pd == pytest.approx(batch.pd[i], rel=1e-12)
        assert fast.score == pytest.approx(batch.score[i], rel=1e-12)
        assert fast.reasons == batch.reasons[i]


def test_unseen_and_missing_categories_score_alike(
    model: TrainedModel, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    row = german[0].head(1).to_dict("records")[0]
    unseen = model.predict_row({**row, "CHK_ACCT": "unheard-of"})
    missing = model.predict_row({**row, "CHK_ACCT": None})
    assert (unseen.pd, unseen.score) == (missing.pd, missing.score)


def test_predict_row_rejects_what_coerce_rejects(
    model: TrainedModel, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    row = german[0].head(1).to_dict("records")[0]
    with pytest.raises(ValidationFailed) as exc:
        model.predict_row({k: v for k, v in row.items() if k != "AGE"})
    assert (exc.value.field, exc.value.rule) == ("data", "columns")
    with pytest.raises(ValidationFailed) as exc:
        model.predict_row({**row, "AGE": "thirty"})
    assert (exc.value.field, exc.value.rule) == ("data", "numeric")
    # a number written as text is read as coerce reads it
    assert model.predict_row({**row, "AGE": "41"}) == model.predict_row({**row, "AGE": 41})


def test_scorecard_predict_row_is_fast(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    card = train("scorecard", X, y, schema=german_schema(X), cv=False, folds=3)
    row = X.head(1).to_dict("records")[0]
    card.predict_row(row)
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        card.predict_row(row)
    per_row = (time.perf_counter() - start) / n
    assert per_row < 1e-3, f"{per_row * 1e3:.3f} ms per row"
