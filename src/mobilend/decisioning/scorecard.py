"""WoE scorecard (optbinning + logistic regression), points scaling and the common model base.

Scaling convention (Scaling): score = offset + factor * ln(good:bad odds), with 600 points at
50:1 odds and 20 points to double the odds (PDO): factor = 20 / ln 2 = 28.8539,
offset = 600 - factor * ln 50 = 487.1229. Odds 100:1 score 620, 25:1 score 580.

The scorecard: each characteristic is binned by optbinning (numeric bins with the monotonic
trend "auto_asc_desc": ascending, descending, peak or valley chosen by the solver; categorical
levels grouped), every value becomes its bin's weight of evidence (WoE = ln(%good / %bad)),
and a logistic regression on the WoE values gives ln(odds of bad) = b0 + sum_j b_j WoE_j.
The points of characteristic j in bin k are

    points_jk = -factor * b_j * WoE_jk + (offset - factor * b0) / p      (p characteristics)

so an applicant's score (the sum of their points) is offset + factor * ln(odds_good) of the
regression. Every characteristic has two extra bins: "Special" (values listed in
`special_codes`) and "Missing" (NaN, and categories not seen in training); with no training
cases they carry WoE 0, the population average.

Probability of default: Platt scaling on cross-validated predictions. The model's raw log-odds
on `calibration_folds` out-of-fold predictions are regressed (1-D logistic regression) on the
outcome; pd = 1 / (1 + exp(-(a + b * raw_logit))). The score comes from the points (the
regression's own odds); pd is the calibrated probability; both are monotone in each other.

TrainedModel is the interface the decision engine uses: `predict(df) -> Predictions`
(arrays pd, score, and reasons) for a batch, `predict_row(row) -> RowPrediction` (pd, score
and reasons of one applicant, a mapping of column name to value) and `metadata` (a dict, filled
in by training and registry). `predict_row` gives exactly what `predict(pd.DataFrame([row]))`
gives, without going through pandas: `FeatureSchema.coerce` works column by column and costs
about 10 ms for a single row, `predict_row` about 0.2 ms for the scorecard (the gbdt's tree
and SHAP evaluation add their own cost). Values are coerced as `coerce` does (numbers to
float, categories to strings, None/NaN missing, an unseen category missing); a value of any
other type takes the `coerce` path itself, so errors are the same `ValidationFailed`.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.datasets import FeatureSchema
from mobilend.decisioning.reasons import Predictions

PD_CLIP = 1e-9


@dataclass(frozen=True)
class Scaling:
    """score = offset + factor * ln(good:bad odds); `points` at `odds`:1, +`pdo` doubles odds."""

    points: float = 600.0
    odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.points - self.factor * math.log(self.odds)

    def score_from_odds(self, odds_good: Any) -> np.ndarray:
        out: np.ndarray = self.offset + self.factor * np.log(np.asarray(odds_good, dtype="float64"))
        return out

    def score_from_pd(self, pd_: Any) -> np.ndarray:
        p = np.clip(np.asarray(pd_, dtype="float64"), PD_CLIP, 1.0 - PD_CLIP)
        out: np.ndarray = self.offset + self.factor * np.log((1.0 - p) / p)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "factor": self.factor,
            "offset": self.offset,
            "formula": "score = offset + factor * ln(good:bad odds); factor = pdo / ln 2",
        }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


@dataclass(frozen=True)
class RowPrediction:
    """One applicant's prediction: pd, score, and reasons (reason dicts, see reasons.py)."""

    pd: float
    score: float
    reasons: list[dict[str, Any]]


# A coerced row: column name -> float (numeric; NaN if missing) or str / NaN (categorical).
RowValues = dict[str, Any]
_NUMBER = (int, float, Decimal, np.integer, np.floating, np.bool_)  # bool is an int


def _category_label(value: Any) -> str:
    """datasets.category_strings' label (2 and 2.0 are "2")."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def coerce_row(schema: FeatureSchema, row: Mapping[str, object]) -> RowValues:
    """One row as `schema.coerce(pd.DataFrame([row]))` types it, without pandas for the usual
    value types (None, numbers, and strings for categories); any other value goes through
    `coerce` itself. Raises ValidationFailed like `coerce` (absent column, non-numeric value)."""
    absent = [n for n in schema.names if n not in row]
    if absent:
        raise ValidationFailed("data", "columns", f"missing feature columns: {absent}")
    out: RowValues = {}
    for name in schema.numeric:
        value = row[name]
        if value is None:
            out[name] = math.nan
        elif isinstance(value, _NUMBER):
            out[name] = float(value)
        else:
            return _coerce_slow(schema, row)
    for name in schema.categorical:
        value = row[name]
        if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
            out[name] = math.nan
        elif isinstance(value, (str, *_NUMBER)) and not isinstance(value, Decimal):
            out[name] = _category_label(value)
        else:
            return _coerce_slow(schema, row)
    return out


def _coerce_slow(schema: FeatureSchema, row: Mapping[str, object]) -> RowValues:
    first = schema.coerce(pd.DataFrame([dict(row)])).iloc[0]
    return {name: first[name] for name in schema.names}


class TrainedModel:
    """Common base: feature typing, Platt calibration, scaling, `predict` and `metadata`."""

    kind = "base"

    def __init__(self, scaling: Scaling | None = None, seed: int = 0, **params: Any) -> None:
        self.scaling = scaling or Scaling()
        self.seed = seed
        self.params = params
        self.schema: FeatureSchema | None = None
        self.calibration: tuple[float, float] = (0.0, 1.0)  # pd = sigmoid(a + b * raw)
        self.calibrated = False
        self.metadata: dict[str, Any] = {}

    # subclasses implement these three on coerced frames
    def _fit_raw(self, Xc: pd.DataFrame, y: np.ndarray) -> None:
        raise NotImplementedError

    def _raw_logit(self, Xc: pd.DataFrame) -> np.ndarray:
        """Uncalibrated ln(odds of bad)."""
        raise NotImplementedError

    def _evaluate(
        self, Xc: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        """(raw log-odds of bad, score or None to derive it from pd, impacts n x features).

        Impacts are computed only when reasons are asked for; larger = more adverse."""
        raise NotImplementedError

    def _evaluate_row(
        self, values: RowValues
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        """`_evaluate` of one coerced row (arrays of length 1). This default builds the
        one-row frame directly (no per-column coercion); subclasses may avoid pandas."""
        assert self.schema is not None
        data = {
            n: np.array([values[n]], dtype=object if n in self.schema.categorical else "float64")
            for n in self.schema.names
        }
        return self._evaluate(pd.DataFrame(data, columns=self.schema.names))

    def fresh(self) -> TrainedModel:
        return type(self)(scaling=self.scaling, seed=self.seed, **self.params)

    def fit(
        self,
        X: pd.DataFrame,
        y_bad: Any,
        *,
        schema: FeatureSchema | None = None,
        calibrate: bool = True,
        calibration_folds: int = 5,
    ) -> TrainedModel:
        self.schema = schema or FeatureSchema.infer(X)
        y = np.asarray(y_bad, dtype="int64")
        Xc = self.schema.coerce(X)
        if calibrate:
            self.calibration = self._platt(Xc, y, calibration_folds)
            self.calibrated = True
        self._fit_raw(Xc, y)
        self.metadata.update(self.describe())
        return self

    def _platt(self, Xc: pd.DataFrame, y: np.ndarray, folds: int) -> tuple[float, float]:
        oof = np.zeros(len(y))
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        for tr, te in skf.split(Xc, y):
            m = self.fresh()
            m.schema = self.schema
            m._fit_raw(Xc.iloc[tr], y[tr])
            oof[te] = m._raw_logit(Xc.iloc[te])
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
        return float(lr.intercept_[0]), float(lr.coef_[0, 0])

    def _coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.schema is None:
            raise RuntimeError("model is not fitted")
        return self.schema.coerce(df)

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        return self._pd(self._raw_logit(self._coerce(df)))

    def _pd(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return _sigmoid(a + b * raw)

    def predict(self, df: pd.DataFrame) -> Predictions:
        """pd, score and (lazily) reasons for every row of `df`, in order."""
        Xc = self._coerce(df)
        raw, score, impacts = self._evaluate(Xc)
        pd_ = self._pd(raw)
        if score is None:
            score = self.scaling.score_from_pd(pd_)
        assert self.schema is not None
        return Predictions(pd=pd_, score=score, features=self.schema.names, impacts=impacts)

    def predict_row(self, row: Mapping[str, object]) -> RowPrediction:
        """pd, score and reasons of one applicant: exactly `predict(pd.DataFrame([row]))`'s
        first row, without pandas (see the module docstring). `row` maps every feature column
        to its value (None when missing); extra keys are ignored."""
        if self.schema is None:
            raise RuntimeError("model is not fitted")
        raw, score, impacts = self._evaluate_row(coerce_row(self.schema, row))
        pd_ = self._pd(raw)
        if score is None:
            score = self.scaling.score_from_pd(pd_)
        preds = Predictions(pd=pd_, score=score, features=self.schema.names, impacts=impacts)
        return RowPrediction(pd=float(pd_[0]), score=float(score[0]), reasons=preds.reasons[0])

    def describe(self) -> dict[str, Any]:
        assert self.schema is not None
        return {
            "kind": self.kind,
            "features": [{"name": n, "type": t} for n, t in self.schema.types().items()],
            "scaling": self.scaling.describe(),
            "calibration": {
                "method": "platt on out-of-fold raw log-odds" if self.calibrated else "none",
                "a": self.calibration[0],
                "b": self.calibration[1],
            },
            "params": {"seed": self.seed, **self.params},
        }


@dataclass
class BinnedCharacteristic:
    """One characteristic's bins: regular bins, then Special, then Missing."""

    name: str
    categorical: bool
    labels: list[str]
    woe: np.ndarray
    count: np.ndarray
    bad: np.ndarray
    splits: np.ndarray | None = None  # numeric inner edges; bin i is [edge[i-1], edge[i])
    categories: list[str] | None = None  # categorical levels seen in training
    category_bin: np.ndarray | None = None  # bin of each level in `categories`
    special_codes: tuple[float, ...] = ()
    points: np.ndarray | None = None
    examples: list[Any] | None = None

    @property
    def special(self) -> int:
        return len(self.labels) - 2

    @property
    def missing(self) -> int:
        return len(self.labels) - 1

    def bin_of(self, value: Any) -> int:
        """bin_index of one coerced value (float, or str / NaN for a categorical)."""
        if self.categorical:
            assert self.categories is not None and self.category_bin is not None
            if isinstance(value, str) and value in self.categories:
                return int(self.category_bin[self.categories.index(value)])
            return self.missing  # unseen or missing
        assert self.splits is not None
        x = float(value)
        if math.isnan(x):
            return self.missing
        if x in self.special_codes:
            return self.special
        return bisect_right(self.splits, x)  # np.searchsorted(..., side="right")

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        if self.categorical:
            assert self.categories is not None and self.category_bin is not None
            codes = pd.Index(self.categories).get_indexer(values)  # -1: unseen or missing
            lookup = np.r_[self.category_bin, self.missing]  # code -1 -> Missing
            found: np.ndarray = lookup[codes]
            return found
        assert self.splits is not None
        x = values.astype("float64")
        idx = np.searchsorted(self.splits, x, side="right")
        if self.special_codes:
            idx = np.where(np.isin(x, self.special_codes), self.special, idx)
        return np.where(np.isnan(x), self.missing, idx)

    def best_points(self) -> float:
        assert self.points is not None
        points: list[float] = self.points.tolist()  # a handful of bins: lists beat numpy
        seen = [p for p, c in zip(points, self.count.tolist(), strict=True) if c > 0]
        return max(seen) if seen else max(points)


class Scorecard(TrainedModel):
    """WoE scorecard. Params: C (LR inverse regularization), max_n_prebins, min_prebin_size,
    monotonic_trend (numeric characteristics), special_codes (numeric values meaning "special")."""

    kind = "scorecard"

    def __init__(self, scaling: Scaling | None = None, seed: int = 0, **params: Any) -> None:
        defaults: dict[str, Any] = {
            "C": 1.0,
            "max_n_prebins": 20,
            "min_prebin_size": 0.05,
            "monotonic_trend": "auto_asc_desc",
            "special_codes": [],
        }
        super().__init__(scaling, seed, **{**defaults, **params})
        self.characteristics: list[BinnedCharacteristic] = []
        self.intercept = 0.0
        self.coef = np.zeros(0)

    def _fit_raw(self, Xc: pd.DataFrame, y: np.ndarray) -> None:
        from optbinning import BinningProcess

        assert self.schema is not None
        p = self.params
        names = self.schema.names
        cats = list(self.schema.categorical)
        special = list(p["special_codes"])
        fit_params = {n: {"monotonic_trend": p["monotonic_trend"]} for n in self.schema.numeric}
        bp = BinningProcess(
            names,
            categorical_variables=cats or None,
            max_n_prebins=p["max_n_prebins"],
            min_prebin_size=p["min_prebin_size"],
            special_codes=special or None,
            binning_fit_params=fit_params,
        )
        with warnings.catch_warnings():  # optbinning's own pandas deprecation warnings
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            bp.fit(Xc, y)
            self.characteristics = [
                _characteristic(bp.get_binned_variable(n), n, n in cats, special) for n in names
            ]
        W = self._woe_matrix(Xc)
        lr = LogisticRegression(C=p["C"], max_iter=2000).fit(W, y)
        self.intercept = float(lr.intercept_[0])
        self.coef = lr.coef_[0].copy()
        f, off, n = self.scaling.factor, self.scaling.offset, len(names)
        for ch, b in zip(self.characteristics, self.coef, strict=True):
            ch.points = -f * b * ch.woe + (off - f * self.intercept) / n

    def _bins(self, Xc: pd.DataFrame) -> list[np.ndarray]:
        return [ch.bin_index(Xc[ch.name].to_numpy()) for ch in self.characteristics]

    def _woe_matrix(self, Xc: pd.DataFrame) -> np.ndarray:
        bins = self._bins(Xc)
        return np.column_stack(
            [ch.woe[b] for ch, b in zip(self.characteristics, bins, strict=True)]
        )

    def _points_matrix(self, Xc: pd.DataFrame) -> np.ndarray:
        bins = self._bins(Xc)
        return np.column_stack(
            [ch.points[b] for ch, b in zip(self.characteristics, bins, strict=True)]  # type: ignore[index]
        )

    def _raw_logit(self, Xc: pd.DataFrame) -> np.ndarray:
        return self._logit_from_score(self._points_matrix(Xc).sum(axis=1))

    def _logit_from_score(self, score: np.ndarray) -> np.ndarray:
        return -(score - self.scaling.offset) / self.scaling.factor

    def _evaluate(
        self, Xc: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        return self._evaluate_points(self._points_matrix(Xc))

    def _evaluate_row(
        self, values: RowValues
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        P = np.array(
            [[ch.points[ch.bin_of(values[ch.name])] for ch in self.characteristics]],  # type: ignore[index]
            dtype="float64",
        )
        return self._evaluate_points(P)

    def _evaluate_points(
        self, P: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        """From the points matrix (n x characteristics, C order): raw log-odds, score, impacts."""
        score = P.sum(axis=1)
        best = np.array([ch.best_points() for ch in self.characteristics])
        return self._logit_from_score(score), score, lambda: best[None, :] - P

    def points_table(self) -> pd.DataFrame:
        """Per characteristic and bin: label, example value, count, bad rate, WoE, points."""
        rows = []
        for ch in self.characteristics:
            assert ch.points is not None and ch.examples is not None
            for k, label in enumerate(ch.labels):
                rows.append(
                    {
                        "feature": ch.name,
                        "bin": label,
                        "example": ch.examples[k],
                        "count": int(ch.count[k]),
                        "bad_rate": float(ch.bad[k] / ch.count[k]) if ch.count[k] else None,
                        "woe": float(ch.woe[k]),
                        "points": float(ch.points[k]),
                    }
                )
        return pd.DataFrame(rows)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["regression"] = {
            "intercept": self.intercept,
            "coef": dict(
                zip(self.schema.names if self.schema else [], self.coef.tolist(), strict=True)
            ),
        }
        table = self.points_table()
        out["binning_tables"] = table.astype(object).where(table.notna(), None).to_dict("records")
        return out


def _characteristic(
    ob: Any, name: str, categorical: bool, special: list[Any]
) -> BinnedCharacteristic:
    table = ob.binning_table.build()
    table = table[table.index != "Totals"]
    woe = table["WoE"].to_numpy(dtype="float64")
    count = table["Count"].to_numpy(dtype="float64")
    bad = table["Event"].to_numpy(dtype="float64")
    n_regular = len(table) - 2
    if categorical:
        groups = [[str(v) for v in g] for g in ob.splits]
        labels = [", ".join(g) for g in groups] + ["Special", "Missing"]
        categories = [v for g in groups for v in g]
        category_bin = np.array([k for k, g in enumerate(groups) for _ in g], dtype="int64")
        examples: list[Any] = [g[0] for g in groups] + [None, None]
        ch = BinnedCharacteristic(
            name, True, labels, woe, count, bad, categories=categories, category_bin=category_bin
        )
    else:
        splits = np.asarray(ob.splits, dtype="float64")
        edges = np.r_[-np.inf, splits, np.inf]
        labels = [_interval(edges[k], edges[k + 1]) for k in range(n_regular)]
        labels += ["Special", "Missing"]
        examples = [_example(edges[k], edges[k + 1]) for k in range(n_regular)]
        examples += [float(special[0]) if special else None, None]
        ch = BinnedCharacteristic(
            name,
            False,
            labels,
            woe,
            count,
            bad,
            splits=splits,
            special_codes=tuple(float(s) for s in special),
        )
    if len(labels) != len(woe):
        raise RuntimeError(f"binning table of {name!r} has {len(woe)} rows, expected {len(labels)}")
    ch.examples = examples
    return ch


def _interval(lo: float, hi: float) -> str:
    def fmt(v: float) -> str:
        return "inf" if v == np.inf else "-inf" if v == -np.inf else f"{v:g}"

    return f"[{fmt(lo)}, {fmt(hi)})"


def _example(lo: float, hi: float) -> float:
    """A value inside [lo, hi)."""
    if np.isfinite(lo):
        return float(lo)
    if np.isfinite(hi):
        return float(hi - 1.0)
    return 0.0
