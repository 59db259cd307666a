"""LightGBM challenger: a small, deterministic gradient-boosted tree model.

Deterministic: fixed seed, `deterministic=True`, row-wise histograms, one thread by default.
Categorical features go to LightGBM as pandas categoricals with the training levels (a level
not seen in training is treated as missing). The probability of default is Platt-calibrated
on out-of-fold raw scores like the scorecard (see scorecard.py), and the score applies the
same points scaling to it: score = offset + factor * ln((1 - pd) / pd).

Reason codes come from the model's SHAP values (`predict(..., pred_contrib=True)`, TreeSHAP in
log-odds of default): the up to four features that push this applicant's risk up the most.

`predict_row` (see scorecard.py) builds the one-row float matrix directly from the coerced
values; the cost left is LightGBM's own (tree evaluation, and TreeSHAP for the reasons).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mobilend.decisioning.scorecard import RowValues, Scaling, TrainedModel


class GradientBoosting(TrainedModel):
    """Params: n_estimators, learning_rate, num_leaves, min_data_in_leaf, feature_fraction,
    bagging_fraction, lambda_l2, num_threads."""

    kind = "gbdt"

    def __init__(self, scaling: Scaling | None = None, seed: int = 0, **params: Any) -> None:
        defaults: dict[str, Any] = {
            "n_estimators": 150,
            "learning_rate": 0.04,
            "num_leaves": 6,
            "min_data_in_leaf": 30,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.8,
            "lambda_l2": 5.0,
            "num_threads": 1,
        }
        super().__init__(scaling, seed, **{**defaults, **params})
        self.booster: Any = None
        self.levels: dict[str, list[str]] = {}

    def _matrix(self, Xc: pd.DataFrame) -> np.ndarray:
        """Float matrix in schema order; a categorical is its level's code (NaN if unseen)."""
        assert self.schema is not None
        cols = []
        for name in self.schema.names:
            if name in self.levels:
                codes = pd.Index(self.levels[name]).get_indexer(Xc[name].to_numpy())
                cols.append(np.where(codes < 0, np.nan, codes).astype("float64"))
            else:
                cols.append(Xc[name].to_numpy(dtype="float64"))
        return np.column_stack(cols)

    def _row_matrix(self, values: RowValues) -> np.ndarray:
        """`_matrix` of one coerced row (1 x features), without pandas."""
        assert self.schema is not None
        out = []
        for name in self.schema.names:
            value = values[name]
            if name in self.levels:
                levels = self.levels[name]
                known = isinstance(value, str) and value in levels
                out.append(float(levels.index(value)) if known else np.nan)
            else:
                out.append(float(value))
        return np.array([out], dtype="float64")

    def _fit_raw(self, Xc: pd.DataFrame, y: np.ndarray) -> None:
        import lightgbm as lgb

        assert self.schema is not None
        self.levels = {
            n: sorted(str(v) for v in pd.unique(Xc[n].dropna())) for n in self.schema.categorical
        }
        p = self.params
        params = {
            "objective": "binary",
            "learning_rate": p["learning_rate"],
            "num_leaves": p["num_leaves"],
            "min_data_in_leaf": p["min_data_in_leaf"],
            "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"],
            "bagging_freq": 1,
            "lambda_l2": p["lambda_l2"],
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": p["num_threads"],
            "verbose": -1,
        }
        names = self.schema.names
        cat_idx = [names.index(n) for n in self.schema.categorical]
        data = lgb.Dataset(
            self._matrix(Xc),
            label=y,
            feature_name=[f"f{j}" for j in range(len(names))],
            categorical_feature=cat_idx or "auto",
        )
        self.booster = lgb.train(params, data, num_boost_round=p["n_estimators"])

    def _raw_logit(self, Xc: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            self.booster.predict(
                self._matrix(Xc), raw_score=True, num_threads=self.params["num_threads"]
            ),
            dtype="float64",
        )

    def _evaluate(
        self, Xc: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        return self._evaluate_matrix(self._matrix(Xc))

    def _evaluate_row(
        self, values: RowValues
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        return self._evaluate_matrix(self._row_matrix(values))

    def _evaluate_matrix(
        self, matrix: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        threads = self.params["num_threads"]
        raw = np.asarray(
            self.booster.predict(matrix, raw_score=True, num_threads=threads), dtype="float64"
        )

        def shap() -> np.ndarray:
            contrib = self.booster.predict(matrix, pred_contrib=True, num_threads=threads)
            return np.asarray(contrib)[:, :-1]  # the last column is the expected value

        return raw, None, shap

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["categorical_levels"] = self.levels
        return out
