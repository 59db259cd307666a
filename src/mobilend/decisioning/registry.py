"""Versioned model artifacts and champion/challenger routing.

An artifact is a directory with two files:
- model.pkl: the pickled model (our own TrainedModel objects only);
- metadata.json: name, kind, version, created_at, trained_by, data_sha256, features and their
  types, CV metrics, scaling convention, calibration, binning tables (scorecard), plus
  model_sha256 (of model.pkl) and content_sha256 (of model.pkl and the canonical metadata).

version = the first 16 hex digits of sha256(model.pkl + canonical metadata without version,
created_at, trained_by and the hashes): the same model trained on the same data gets the same
version. `load` recomputes both hashes BEFORE unpickling and raises ValidationFailed(field
"model", rule "integrity") on any change to either file. This detects accidents and edits, not
an attacker able to rewrite both files: keep artifact directories read-only for the service.

ModelRegistry(root) keeps artifacts in root/<version>/ and the routing state in
root/registry.json: {"champion": v, "challenger": v | null, "challenger_share": 0.2}.
route(key) hashes the application key (sha256 of "mobilend-route:" + key, first 8 bytes as an
integer / 2**64) into [0, 1): below challenger_share it goes to the challenger, otherwise to
the champion. The same key always gets the same model; raising the share only moves keys from
champion to challenger, never back.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.decisioning.scorecard import TrainedModel

MODEL_FILE = "model.pkl"
META_FILE = "metadata.json"
STATE_FILE = "registry.json"
_UNHASHED = ("version", "created_at", "trained_by", "model_sha256", "content_sha256")


def _canonical(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode()


def _hashes(blob: bytes, meta: dict[str, Any]) -> tuple[str, str, str]:
    """(version, model_sha256, content_sha256) for a pickled model and its metadata."""
    model_sha = hashlib.sha256(blob).hexdigest()
    stable = {k: v for k, v in meta.items() if k not in _UNHASHED}
    version = hashlib.sha256(blob + _canonical(stable)).hexdigest()[:16]
    signed = {k: v for k, v in meta.items() if k != "content_sha256"}
    content = hashlib.sha256(blob + _canonical(signed)).hexdigest()
    return version, model_sha, content


def save(
    model: TrainedModel,
    out_dir: str | Path,
    *,
    trained_by: str | None = None,
    created_at: datetime | None = None,
) -> Path:
    """Write model.pkl and metadata.json into out_dir (created if needed); return out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads(_canonical(dict(model.metadata)))  # JSON-safe copy
    for key in _UNHASHED:
        meta.pop(key, None)
    meta.setdefault("name", model.kind)
    meta["kind"] = model.kind
    saved_meta = model.metadata
    model.metadata = {}  # the pickle holds the model; metadata.json holds the metadata
    try:
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        model.metadata = saved_meta
    version, model_sha, _ = _hashes(blob, meta)
    meta["version"] = version
    meta["created_at"] = (created_at or datetime.now(UTC)).isoformat(timespec="seconds")
    meta["trained_by"] = trained_by or saved_meta.get("trained_by") or _os_user()
    meta["model_sha256"] = model_sha
    meta["content_sha256"] = _hashes(blob, meta)[2]
    (out / MODEL_FILE).write_bytes(blob)
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    model.metadata = dict(meta)
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    p = Path(path) / META_FILE
    if not p.is_file():
        raise ValidationFailed("model", "artifact", f"no {META_FILE} in {Path(path)}")
    try:
        meta: dict[str, Any] = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValidationFailed("model", "integrity", f"{p} is not valid JSON: {exc}") from None
    return meta


def load(path: str | Path) -> TrainedModel:
    """Load an artifact after checking its hashes; ValidationFailed("model", ...) if it fails."""
    p = Path(path)
    meta = read_metadata(p)
    model_file = p / MODEL_FILE
    if not model_file.is_file():
        raise ValidationFailed("model", "artifact", f"no {MODEL_FILE} in {p}")
    blob = model_file.read_bytes()
    version, model_sha, content = _hashes(blob, meta)
    if model_sha != meta.get("model_sha256"):
        raise ValidationFailed("model", "integrity", f"{model_file} does not match its metadata")
    if content != meta.get("content_sha256") or version != meta.get("version"):
        raise ValidationFailed("model", "integrity", f"{p / META_FILE} was modified")
    model = pickle.loads(blob)
    if not isinstance(model, TrainedModel):
        raise ValidationFailed("model", "artifact", f"{model_file} does not hold a model")
    model.metadata = meta
    return model


def route_point(application_key: str) -> float:
    """The key's deterministic position in [0, 1)."""
    digest = hashlib.sha256(f"mobilend-route:{application_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class ModelRegistry:
    """Artifacts under root/<version>/, champion and challenger in root/registry.json."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def register(self, model: TrainedModel, *, trained_by: str | None = None) -> str:
        staging = self.root / ".staging"
        save(model, staging, trained_by=trained_by)
        version = str(model.metadata["version"])
        target = self.root / version
        if target.exists():
            for f in staging.iterdir():
                f.unlink()
            staging.rmdir()
        else:
            staging.rename(target)
        return version

    def versions(self) -> list[dict[str, Any]]:
        """Metadata summaries of every stored version, oldest first."""
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and (d / META_FILE).is_file() and not d.name.startswith("."):
                m = read_metadata(d)
                cv = (m.get("cv") or {}).get("mean")
                out.append(
                    {
                        "version": m.get("version"),
                        "name": m.get("name"),
                        "kind": m.get("kind"),
                        "created_at": m.get("created_at"),
                        "cv_auc": cv.get("auc") if cv else None,
                    }
                )
        return sorted(out, key=lambda r: str(r["created_at"]))

    def load(self, version: str) -> TrainedModel:
        path = self.root / version
        if not path.is_dir():
            raise NotFound(f"no model version {version!r}", field="version")
        model = load(path)
        if model.metadata.get("version") != version:
            raise ValidationFailed("model", "integrity", f"{path} holds another version")
        return model

    @property
    def state(self) -> dict[str, Any]:
        p = self.root / STATE_FILE
        if p.is_file():
            state: dict[str, Any] = json.loads(p.read_text())
            return state
        return {"champion": None, "challenger": None, "challenger_share": 0.0}

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.root / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.root / STATE_FILE)

    def _require(self, version: str) -> None:
        if not (self.root / version / META_FILE).is_file():
            raise NotFound(f"no model version {version!r}", field="version")

    def set_champion(self, version: str) -> None:
        self._require(version)
        state = self.state
        state["champion"] = version
        if state.get("challenger") == version:
            state["challenger"], state["challenger_share"] = None, 0.0
        self._write_state(state)

    def set_challenger(self, version: str | None, share: float = 0.0) -> None:
        """Send `share` (0 to 1) of applications to `version`; None removes the challenger."""
        if not 0.0 <= share <= 1.0:
            raise ValidationFailed("share", "range", "challenger share must be within [0, 1]")
        if version is not None:
            self._require(version)
        state = self.state
        state["challenger"] = version
        state["challenger_share"] = share if version else 0.0
        self._write_state(state)

    def route(self, application_key: str) -> str:
        """The version that scores this application (deterministic in the key)."""
        state = self.state
        if not state.get("champion"):
            raise NotFound("no champion model is set", field="champion")
        if state.get("challenger") and route_point(application_key) < state["challenger_share"]:
            return str(state["challenger"])
        return str(state["champion"])


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
