"""Credit data for training and scoring: the bundled German credit set and any tabular CSV.

Feature typing is part of a model's contract: `FeatureSchema` records which columns are
numeric and which categorical when a model is trained, and `FeatureSchema.coerce` brings a
scoring frame (read from CSV, JSON or a database) to the same types.

Categorical columns in `load_csv` (the rule, see `detect_categoricals`):
- object, string, bool and pandas category dtypes are categorical;
- integer columns with at most `max_levels` (default 10) distinct values are categorical
  (codes such as 0-4 employment classes, and 0/1 flags);
- everything else (floats, integers with many values) is numeric.
Categorical values are kept as strings ("0", "1", "A11"); missing stays missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mobilend.core.errors import ValidationFailed

# German credit (dmba one-hot layout): integer codes that name classes, not quantities.
GERMAN_CATEGORICAL = (
    "CHK_ACCT",  # 0: < 0 DM, 1: 0-200 DM, 2: >= 200 DM, 3: no checking account
    "HISTORY",  # 0: no credits, 1: all paid here, 2: existing paid duly, 3: delays, 4: critical
    "SAV_ACCT",  # 0: < 100 DM, 1: 100-500, 2: 500-1000, 3: >= 1000, 4: unknown / none
    "EMPLOYMENT",  # 0: unemployed, 1: < 1 year, 2: 1-4 years, 3: 4-7 years, 4: >= 7 years
    "JOB",  # 0: unskilled non-resident, 1: unskilled resident, 2: skilled, 3: management
    "PRESENT_RESIDENT",  # years at present residence, coded 1-4
)
GERMAN_TARGET = "RESPONSE"  # 1 = good, 0 = bad
MAX_INTEGER_LEVELS = 10


@dataclass(frozen=True)
class FeatureSchema:
    """Column names in order with their type: "numeric" or "categorical"."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    order: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return list(self.order or (*self.numeric, *self.categorical))

    def types(self) -> dict[str, str]:
        cats = set(self.categorical)
        return {n: "categorical" if n in cats else "numeric" for n in self.names}

    @classmethod
    def infer(cls, X: pd.DataFrame, max_levels: int = MAX_INTEGER_LEVELS) -> FeatureSchema:
        cats = set(detect_categoricals(X, max_levels))
        names = [str(c) for c in X.columns]
        return cls(
            numeric=tuple(n for n in names if n not in cats),
            categorical=tuple(n for n in names if n in cats),
            order=tuple(names),
        )

    def coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        """The schema's columns, numeric as float64 and categorical as strings (NaN if missing).

        Raises ValidationFailed(field="data", rule="columns") naming any absent column.
        """
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise ValidationFailed("data", "columns", f"missing feature columns: {missing}")
        out: dict[str, Any] = {}
        for name in self.numeric:
            out[name] = _as_numeric(df[name], name)
        for name in self.categorical:
            out[name] = category_strings(df[name])
        return pd.DataFrame(out, index=df.index)[self.names]


def _as_numeric(s: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(s, errors="coerce")
    bad = values.isna() & s.notna()
    if bad.any():
        example = s[bad].iloc[0]
        raise ValidationFailed(
            "data", "numeric", f"column {name!r} should be numeric, got {example!r}"
        )
    out: np.ndarray = values.to_numpy(dtype="float64", na_value=np.nan)
    return out


def category_strings(s: pd.Series) -> np.ndarray:
    """Category values as Python strings (object array); missing -> NaN.

    Integral floats lose their ".0" (a column of codes read with missing values is float), so
    2.0 and 2 are the same category "2". Vectorised: only the distinct values are formatted.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    labels = [_label(v) for v in np.asarray(uniques, dtype=object)]
    table = np.array([*labels, np.nan], dtype=object)
    out: np.ndarray = table[codes]  # code -1 (missing) picks the trailing NaN
    return out


def _label(v: Any) -> str:
    if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def detect_categoricals(X: pd.DataFrame, max_levels: int = MAX_INTEGER_LEVELS) -> list[str]:
    """Columns to treat as categorical (see the module docstring for the rule)."""
    cats = []
    for col in X.columns:
        s = X[col]
        dtype = s.dtype
        if (
            isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or (pd.api.types.is_integer_dtype(dtype) and s.nunique(dropna=True) <= max_levels)
        ):
            cats.append(str(col))
    return cats


def german_credit() -> tuple[pd.DataFrame, pd.Series]:
    """German credit (1,000 loans, 300 bad) from the dmba wheel: features and y_bad (1 = bad).

    OBS# is dropped; the integer-coded classes in GERMAN_CATEGORICAL become pandas categoricals;
    the 0/1 indicator columns and the quantities stay integers.
    """
    import dmba

    df = dmba.load_data("GermanCredit.csv")
    y_bad = (df[GERMAN_TARGET] == 0).astype("int64").rename("bad")
    X = df.drop(columns=["OBS#", GERMAN_TARGET])
    for col in GERMAN_CATEGORICAL:
        X[col] = X[col].astype("category")
    return X, y_bad


def german_schema(X: pd.DataFrame) -> FeatureSchema:
    """The schema german_credit() means: its categoricals, every other column numeric."""
    names = [str(c) for c in X.columns]
    cats = set(GERMAN_CATEGORICAL)
    return FeatureSchema(
        numeric=tuple(n for n in names if n not in cats),
        categorical=tuple(n for n in names if n in cats),
        order=tuple(names),
    )


def load_csv(path: str | Path, target: str, bad_value: str | int) -> tuple[pd.DataFrame, pd.Series]:
    """Features and y_bad from a CSV; the rows whose `target` equals `bad_value` are bad (1).

    The target is compared as text, so `--bad 0` matches a column of integers 0/1.
    Raises ValidationFailed naming "data" (no such file / unreadable), "target" (no such
    column, or missing target values) or "bad" (value never present, or every row bad).
    Categorical columns follow `detect_categoricals` and become pandas categoricals.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationFailed("data", "file-exists", f"no such file: {p}")
    try:
        df = pd.read_csv(p)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed("data", "csv", f"cannot read {p} as CSV: {exc}") from None
    if target not in df.columns:
        raise ValidationFailed(
            "target", "column-exists", f"target column {target!r} not in {list(df.columns)}"
        )
    y_raw = df[target]
    if y_raw.isna().any():
        raise ValidationFailed(
            "target",
            "no-missing",
            f"target column {target!r} has {int(y_raw.isna().sum())} missing values",
        )
    labels = pd.Series(category_strings(y_raw), index=df.index)
    bad = str(bad_value)
    y_bad = (labels == bad).astype("int64").rename("bad")
    if not y_bad.any():
        seen = sorted(labels.unique().tolist())[:10]
        raise ValidationFailed(
            "bad", "value-present", f"bad value {bad!r} not found in {target!r}; values: {seen}"
        )
    if y_bad.all():
        raise ValidationFailed("bad", "two-classes", f"every row of {target!r} is {bad!r}")
    X = df.drop(columns=[target])
    for col in detect_categoricals(X):
        X[col] = X[col].astype("category")
    return X, y_bad


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def frame_sha256(X: pd.DataFrame, y: pd.Series | np.ndarray) -> str:
    """A content hash of training data held in memory (column names, values and labels)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, X.columns)).encode())
    h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    h.update(np.asarray(y, dtype="int64").tobytes())
    return h.hexdigest()
