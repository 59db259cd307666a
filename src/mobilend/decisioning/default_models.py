"""The default credit models: trained once from the bundled German credit data, then loaded.

`ensure_default_models(root)` makes sure the registry at `root` has a champion: when it has
none, it trains a WoE scorecard (the champion) and a LightGBM challenger on German credit
(dmba's `GermanCredit.csv`, 1,000 loans) with the protected characteristics in
`german_map.DROPPED` removed, seed 0 and stratified 5-fold CV reported in the metadata, and
routes `challenger_share` of applications to the challenger. The training is deterministic:
the same data and seed give the same artifact versions. A file lock (root/.train.lock) keeps
two processes from training at once; the second waits and then finds the champion.

`load_models(root)` returns the champion and challenger as a `ModelSet`, cached per process
and registry directory: a server loads them once (at start, or on the first decision), and a
test session trains them once. Routing uses the registry's state as it was when loaded:
restart the service after `mobilend model` changes the champion or the share.

Both default models carry metadata["feature_map"] = "german": the engine translates an
application into German credit columns (german_map.german_row) before scoring them. A model a
lender trains on the platform's own feature names has no feature_map and is scored on the
features directly.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mobilend.decisioning.registry import ModelRegistry, route_point
from mobilend.decisioning.scorecard import TrainedModel

SEED = 0
CHALLENGER_SHARE = 0.2
FEATURE_MAP = "german"
TRAINED_BY = "mobilend-default-models"


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: TrainedModel

    @property
    def kind(self) -> str:
        return str(self.model.metadata.get("kind", self.model.kind))


@dataclass(frozen=True)
class ModelSet:
    """The champion, the optional challenger, and the challenger's share of applications."""

    champion: LoadedModel
    challenger: LoadedModel | None
    challenger_share: float

    def route(self, key: str) -> tuple[LoadedModel, LoadedModel | None]:
        """(deciding model, shadow model) for an application key; as ModelRegistry.route."""
        if self.challenger is not None and route_point(key) < self.challenger_share:
            return self.challenger, self.champion
        return self.champion, self.challenger


def train_default_models(*, seed: int = SEED, cv: bool = True) -> tuple[TrainedModel, ...]:
    """(scorecard, gbdt) fitted on German credit without the protected characteristics."""
    from mobilend.decisioning.datasets import german_credit, german_schema
    from mobilend.decisioning.german_map import DROPPED
    from mobilend.decisioning.training import train

    X, y = german_credit()
    X = X.drop(columns=list(DROPPED))
    schema = german_schema(X)
    models = []
    for kind in ("scorecard", "gbdt"):
        model = train(
            kind,
            X,
            y,
            seed=seed,
            schema=schema,
            cv=cv,
            name=f"german-credit-{kind}",
            trained_by=TRAINED_BY,
        )
        model.metadata["feature_map"] = FEATURE_MAP
        model.metadata["dropped_protected"] = list(DROPPED)
        model.metadata["dataset"] = "dmba GermanCredit.csv (1,000 loans, 300 bad)"
        models.append(model)
    return tuple(models)


@contextmanager
def _training_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".train.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_default_models(
    root: str | Path,
    *,
    challenger_share: float = CHALLENGER_SHARE,
    seed: int = SEED,
    cv: bool = True,
) -> ModelRegistry:
    """The registry at `root`, with the default champion and challenger trained if it has
    no champion yet (about 15 s with CV on one core)."""
    root = Path(root)
    registry = ModelRegistry(root)
    if registry.state.get("champion"):
        return registry
    with _training_lock(root):
        if registry.state.get("champion"):
            return registry  # another process trained them while we waited
        champion, challenger = train_default_models(seed=seed, cv=cv)
        champion_version = registry.register(champion, trained_by=TRAINED_BY)
        challenger_version = registry.register(challenger, trained_by=TRAINED_BY)
        registry.set_champion(champion_version)
        registry.set_challenger(challenger_version, challenger_share)
    return registry


_cache: dict[Path, ModelSet] = {}
_cache_lock = threading.Lock()


def load_models(
    root: str | Path, *, challenger_share: float = CHALLENGER_SHARE, seed: int = SEED
) -> ModelSet:
    """The registry's champion and challenger, trained first if needed; cached per process."""
    key = Path(root).resolve()
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            registry = ensure_default_models(key, challenger_share=challenger_share, seed=seed)
            state = registry.state
            champion = LoadedModel(state["champion"], registry.load(state["champion"]))
            challenger = None
            if state.get("challenger"):
                challenger = LoadedModel(state["challenger"], registry.load(state["challenger"]))
            cached = ModelSet(champion, challenger, float(state.get("challenger_share") or 0.0))
            _cache[key] = cached
    return cached


def forget(root: str | Path | None = None) -> None:
    """Drop the cached models of `root` (all when None), e.g. after changing the champion."""
    with _cache_lock:
        if root is None:
            _cache.clear()
        else:
            _cache.pop(Path(root).resolve(), None)
