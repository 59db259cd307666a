"""`mobilend model` train and score through a real process; option errors exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dmba
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning import registry
from mobilend.decisioning.datasets import load_csv
from mobilend.decisioning.model_cli import model_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "german.csv"
    dmba.load_data("GermanCredit.csv").drop(columns=["OBS#"]).to_csv(path, index=False)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobilend.decisioning.model_cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_train_then_score_round_trip(german_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    r = _cli(
        "train",
        "--data",
        str(german_csv),
        "--target",
        "RESPONSE",
        "--bad",
        "0",
        "--kind",
        "scorecard",
        "--out",
        str(out),
        "--folds",
        "3",
        "--trained-by",
        "ci",
    )
    assert r.returncode == 0, r.stderr
    assert "mean" in r.stdout and "AUC" in r.stdout
    meta = registry.read_metadata(out)
    assert meta["trained_by"] == "ci" and meta["cv"]["folds"] == 3

    apps = pd.read_csv(german_csv).drop(columns=["RESPONSE"]).sample(frac=1.0, random_state=1)
    apps = apps.head(300).reset_index(drop=True)
    apps_csv = tmp_path / "apps.csv"
    apps.to_csv(apps_csv, index=False)
    scores_csv = tmp_path / "scores.csv"
    r = _cli(
        "score",
        "--model",
        str(out),
        "--data",
        str(apps_csv),
        "--out",
        str(scores_csv),
        "--chunk-size",
        "64",
    )
    assert r.returncode == 0, r.stderr
    scores = pd.read_csv(scores_csv, keep_default_na=False)
    assert list(scores.columns) == ["pd", "score", "reasons"] and len(scores) == 300
    expected = registry.load(out).predict(apps)  # same rows, in the same order
    np.testing.assert_allclose(scores["pd"], expected.pd, atol=5e-7)
    np.testing.assert_allclose(scores["score"], expected.score, atol=5e-3)
    assert scores["reasons"].tolist() == expected.reason_codes().tolist()


def test_option_errors_exit_2(german_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["train", "--target", "RESPONSE", "--bad", "0", "--out", str(tmp_path / "m")]
    cases = [
        (["--data", str(tmp_path / "nope.csv")], "--data"),
        (["--data", str(german_csv), "--target", "NOPE"], "--target"),
        (["--data", str(german_csv), "--bad", "7"], "--bad"),
    ]
    for extra, option in cases:
        args = base + extra
        result = runner.invoke(model_app, args)
        assert result.exit_code == 2, (args, result.output)
        assert option in result.output
    r = runner.invoke(
        model_app,
        [
            "score",
            "--model",
            str(tmp_path / "none"),
            "--data",
            str(german_csv),
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert r.exit_code == 2 and "--model" in r.output


def test_load_csv_detects_categoricals(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {
            "grade": ["A", "B", "A", "C"],
            "flag": [0, 1, 1, 0],
            "income": [1.5, 2.0, 3.5, 4.0],
            "age": [21, 35, 48, 60],
            "y": ["good", "bad", "good", "good"],
        }
    ).to_csv(path, index=False)
    X, y = load_csv(path, "y", "bad")
    assert y.tolist() == [0, 1, 0, 0]
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    assert cats == ["grade", "flag", "age"]  # integers with <= 10 levels count as categorical
    with pytest.raises(ValidationFailed) as exc:
        load_csv(path, "y", "ugly")
    assert exc.value.field == "bad"
