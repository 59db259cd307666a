"""WoE scorecard on German credit: scaling, points, reasons, CV against the baseline; registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning import registry
from mobilend.decisioning.datasets import german_credit, german_schema
from mobilend.decisioning.reasons import text
from mobilend.decisioning.scorecard import Scaling, Scorecard
from mobilend.decisioning.training import cross_validate, train


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.Series]:
    return german_credit()


@pytest.fixture(scope="module")
def card(german: tuple[pd.DataFrame, pd.Series]) -> Scorecard:
    X, y = german
    model = train("scorecard", X, y, schema=german_schema(X), cv=False, folds=3)
    assert isinstance(model, Scorecard)
    return model


def test_german_credit_shape(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    assert X.shape == (1000, 30) and "OBS#" not in X.columns and "RESPONSE" not in X.columns
    assert int(y.sum()) == 300
    assert isinstance(X["CHK_ACCT"].dtype, pd.CategoricalDtype)
    assert isinstance(X["JOB"].dtype, pd.CategoricalDtype)


def test_scaling_convention_by_hand() -> None:
    s = Scaling()  # 600 at 50:1, PDO 20
    assert s.factor == pytest.approx(20 / math.log(2)) and s.factor == pytest.approx(
        28.8539, abs=1e-4
    )
    assert s.offset == pytest.approx(600 - 28.853900817779268 * math.log(50))
    assert s.offset == pytest.approx(487.1229, abs=1e-4)
    assert s.score_from_odds(50) == pytest.approx(600)
    assert s.score_from_odds(100) == pytest.approx(620)
    assert s.score_from_odds(25) == pytest.approx(580)
    assert s.score_from_pd(1 / 51) == pytest.approx(600)  # pd 1/51 is 50:1 good:bad


def test_points_add_up_to_the_score(
    card: Scorecard, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = german
    p = card.predict(X.head(50))
    table = card.points_table()
    # scoring the first applicant by hand from the points table
    row = X.iloc[0]
    total = 0.0
    for ch in card.characteristics:
        k = int(ch.bin_index(card.schema.coerce(X.head(1))[ch.name].to_numpy())[0])  # type: ignore[union-attr]
        total += float(table[(table.feature == ch.name)].iloc[k]["points"])
    assert p.score[0] == pytest.approx(total)
    assert row.name == 0
    # score and raw odds agree with the convention: ln(good:bad) = (score - offset) / factor
    raw_pd = 1 / (1 + np.exp((p.score - card.scaling.offset) / card.scaling.factor))
    assert np.all(np.diff(p.pd[np.argsort(raw_pd)]) >= -1e-12)  # calibrated pd is monotone


def test_calibrated_pd_matches_bad_rate(
    card: Scorecard, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = german
    pd_ = card.predict(X).pd
    assert pd_.mean() == pytest.approx(y.mean(), abs=0.02)
    assert card.metadata["calibration"]["method"].startswith("platt")


def _applicant(card: Scorecard, pick: dict[str, str]) -> pd.DataFrame:
    """One applicant whose value for each characteristic lies in the chosen bin (best/worst)."""
    table = card.points_table()
    seen = table[table["count"] > 0]
    values = {}
    for name, group in seen.groupby("feature", sort=False):
        which = pick.get(str(name), "best")
        row = group.loc[group.points.idxmax() if which == "best" else group.points.idxmin()]
        values[name] = row["example"]
    return pd.DataFrame([values])[card.schema.names]  # type: ignore[union-attr]


def test_best_bins_everywhere_give_no_reasons(card: Scorecard) -> None:
    p = card.predict(_applicant(card, {}))
    assert p.reasons == [[]]
    assert p.reason_codes().tolist() == [""]


def test_worst_bin_comes_first(card: Scorecard) -> None:
    p = card.predict(_applicant(card, {"CHK_ACCT": "worst"}))
    reasons = p.reasons[0]
    assert [r["code"] for r in reasons] == ["CHK_ACCT"]
    assert reasons[0]["en"] == "Checking account status" and reasons[0]["zh"] == "支票账户状态"
    assert reasons[0]["impact"] > 0
    p2 = card.predict(_applicant(card, {"CHK_ACCT": "worst", "DURATION": "worst", "AGE": "worst"}))
    impacts = [r["impact"] for r in p2.reasons[0]]
    assert len(impacts) == 3 and impacts == sorted(impacts, reverse=True)


def test_at_most_four_reasons(card: Scorecard, german: tuple[pd.DataFrame, pd.Series]) -> None:
    p = card.predict(german[0])
    assert max(len(r) for r in p.reasons) == 4
    assert all(len(c.split(";")) <= 4 for c in p.reason_codes())


def test_unknown_feature_text_falls_back_to_name() -> None:
    assert text("DEVICE_AGE_DAYS") == {"en": "DEVICE_AGE_DAYS", "zh": "DEVICE_AGE_DAYS"}


def test_missing_and_unseen_values_score(
    card: Scorecard, german: tuple[pd.DataFrame, pd.Series]
) -> None:
    X = german[0].head(2).astype({"CHK_ACCT": object}).copy()
    X.loc[0, "DURATION"] = np.nan
    X.loc[1, "CHK_ACCT"] = "9"  # a level never seen in training
    p = card.predict(X)
    assert np.isfinite(p.pd).all() and np.isfinite(p.score).all()


def test_scorecard_beats_one_hot_logistic(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """5-fold CV, same folds: the WoE scorecard's mean AUC is at least the baseline's."""
    X, y = german
    schema = german_schema(X)
    card = cross_validate("scorecard", X, y, folds=5, seed=0, schema=schema)
    base = cross_validate("logistic", X, y, folds=5, seed=0, schema=schema)
    print(
        f"\nscorecard CV AUC {card.mean['auc']:.4f} ± {card.std['auc']:.4f}; "
        f"one-hot logistic {base.mean['auc']:.4f} ± {base.std['auc']:.4f}"
    )
    assert 0.76 <= base.mean["auc"] <= 0.82  # published LR on German credit: about 0.78-0.79
    assert card.mean["auc"] >= base.mean["auc"]
    assert card.mean["gini"] == pytest.approx(2 * card.mean["auc"] - 1)


# --- registry -------------------------------------------------------------------------------


def test_registry_round_trip(
    card: Scorecard, german: tuple[pd.DataFrame, pd.Series], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    X, _ = german
    path = registry.save(card, tmp_path / "m", trained_by="tester")
    meta = json.loads((path / "metadata.json").read_text())
    for key in (
        "name",
        "kind",
        "version",
        "created_at",
        "trained_by",
        "data_sha256",
        "features",
        "scaling",
        "binning_tables",
        "calibration",
    ):
        assert key in meta
    assert meta["trained_by"] == "tester" and meta["kind"] == "scorecard"
    assert meta["scaling"]["offset"] == pytest.approx(487.1229, abs=1e-4)
    loaded = registry.load(path)
    a, b = card.predict(X), loaded.predict(X)
    np.testing.assert_array_equal(a.pd, b.pd)
    np.testing.assert_array_equal(a.score, b.score)
    assert a.reason_codes().tolist() == b.reason_codes().tolist()
    # the same model saved again gets the same version (content hash)
    again = registry.save(card, tmp_path / "m2")
    assert json.loads((again / "metadata.json").read_text())["version"] == meta["version"]


def test_registry_detects_tampering(card: Scorecard, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = registry.save(card, tmp_path / "m")
    meta_file = path / "metadata.json"
    original = meta_file.read_text()
    meta = json.loads(original)
    meta["cv"] = {"mean": {"auc": 0.99}}
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ValidationFailed) as exc:
        registry.load(path)
    assert exc.value.field == "model" and exc.value.rule == "integrity"
    meta_file.write_text(original)
    blob = bytearray((path / "model.pkl").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (path / "model.pkl").write_bytes(bytes(blob))
    with pytest.raises(ValidationFailed, match="does not match"):
        registry.load(path)


def test_routing_share_and_determinism(card: Scorecard, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = registry.ModelRegistry(tmp_path / "reg")
    champion = reg.register(card)
    challenger_model = train("logistic", *german_credit(), cv=False, folds=3)
    challenger = reg.register(challenger_model)
    assert {v["version"] for v in reg.versions()} == {champion, challenger}
    reg.set_champion(champion)
    reg.set_challenger(challenger, share=0.2)
    keys = [f"APP-{i:06d}" for i in range(10_000)]
    routed = [reg.route(k) for k in keys]
    share = routed.count(challenger) / len(keys)
    assert 0.17 <= share <= 0.23
    assert routed == [reg.route(k) for k in keys]  # deterministic
    assert registry.ModelRegistry(tmp_path / "reg").route(keys[0]) == routed[0]
    assert reg.load(champion).kind == "scorecard"
