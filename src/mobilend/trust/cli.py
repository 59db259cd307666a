"""`mobilend log ...`: relay, sign, download, audit, and verify with no database (JSON out).

`verify` (and `check_bundle`, which it runs) uses only the pure `merkle` and `signing`
modules: anyone with the files the API serves and the log's public key can check an entry.
Exit codes: 0 all checks hold, 1 a check failed (named in the verdict), 2 unreadable input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mobilend.cli_common import echo as _echo
from mobilend.cli_common import fail as _fail
from mobilend.cli_common import run as _run
from mobilend.core.errors import MobilendError, ValidationFailed
from mobilend.trust import merkle, signing
from mobilend.trust.signing import SignedTreeHead

if TYPE_CHECKING:
    pass

log_app = typer.Typer(
    help="Transparency log: relay, sign tree heads, proofs, audit, offline verify.",
    no_args_is_help=True,
)
T = TypeVar("T")
KeyPath = Annotated[
    Path | None, typer.Option("--key-path", help="signing key PEM (default data_dir's)")
]


def _relay(now: datetime) -> int:
    from mobilend.db.session import build_engine, session_factory
    from mobilend.settings import get_settings
    from mobilend.trust import log

    engine = build_engine(get_settings().database_url)
    try:
        return log.relay(session_factory(engine), now=now)
    except MobilendError as exc:
        _fail(exc)
        raise
    finally:
        engine.dispose()


def _data_dir() -> Path:
    from mobilend.settings import get_settings

    return get_settings().data_dir


def _now() -> datetime:
    return datetime.now(UTC)  # the CLI is the edge: the services take `now` from here


@log_app.command("relay")
def relay_cmd() -> None:
    """Append every pending leaf to the tree."""
    from mobilend.trust import log

    appended = _relay(_now())
    _echo({"appended": appended, "tree_size": _run(log.tree_size)})


@log_app.command("sth")
def sth_cmd(key_path: KeyPath = None) -> None:
    """Relay, then sign and store a tree head; print it (the same JSON as GET /v1/log/sth)."""
    from mobilend.trust import log

    now = _now()
    _relay(now)
    sth = _run(lambda s: log.sign_tree_head(s, now=now, data_dir=_data_dir(), key_path=key_path))
    _echo(sth.to_json())


@log_app.command("public-key")
def public_key_cmd(key_path: KeyPath = None) -> None:
    """Print the tree-head signing key (the same JSON as GET /v1/log/public-key)."""
    try:
        _echo(signing.public_key_json(signing.log_key(_data_dir(), key_path=key_path)))
    except MobilendError as exc:
        _fail(exc)


@log_app.command("entries")
def entries_cmd(
    start: Annotated[int, typer.Option(help="first leaf index")],
    end: Annotated[int, typer.Option(help="last leaf index, inclusive")],
) -> None:
    """Print leaves start..end as {"entries": [...]} (at most 1000)."""
    from mobilend.trust import log

    _echo(
        _run(
            lambda s: {"entries": [log.entry_json(e) for e in log.entries(s, start=start, end=end)]}
        )
    )


@log_app.command("proof")
def proof_cmd(
    leaf_hash: Annotated[str, typer.Option("--hash", help="leaf hash, base64 or hex")],
    tree_size: Annotated[int, typer.Option(help="tree size of a signed tree head")],
) -> None:
    """Print an inclusion proof (the same JSON as GET /v1/log/proof-by-hash)."""
    from mobilend.trust import log
    from mobilend.trust.api import parse_hash

    try:
        hashed = parse_hash(leaf_hash)
    except MobilendError as exc:
        _fail(exc)
        return
    _echo(_run(lambda s: log.inclusion_proof(s, leaf_hash=hashed, tree_size=tree_size).to_json()))


@log_app.command("consistency")
def consistency_cmd(
    first: Annotated[int, typer.Option(help="the older tree size")],
    second: Annotated[int, typer.Option(help="the newer tree size")],
) -> None:
    """Print a consistency proof (the same JSON as GET /v1/log/consistency)."""
    from mobilend.trust import log

    proof = _run(lambda s: log.consistency_proof(s, first=first, second=second))
    _echo({"first": first, "second": second, "consistency": [signing.b64(h) for h in proof]})


@log_app.command("audit")
def audit_cmd(key_path: KeyPath = None) -> None:
    """Recompute the log from its leaves and compare; exit 1 when anything differs."""
    from mobilend.trust import audit

    report = _run(lambda s: audit.audit(s, data_dir=_data_dir(), key_path=key_path))
    _echo(report.to_json())
    if not report.ok:
        raise typer.Exit(1)


# -- offline verification ----------------------------------------------------------------


class CheckFailed(Exception):
    def __init__(self, check: str, detail: str) -> None:
        super().__init__(detail)
        self.check = check
        self.detail = detail


def _require(condition: bool, check: str, detail: str) -> None:
    if not condition:
        raise CheckFailed(check, detail)


def _parsed(check: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ValidationFailed as exc:
        raise CheckFailed(check, f"{exc.field}: {exc.detail}") from exc


def _int(obj: Any, name: str, check: str) -> int:
    value = obj.get(name) if isinstance(obj, dict) else None
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        check,
        f"{name} must be an integer >= 0",
    )
    return int(value)  # type: ignore[arg-type]


def _hashes(obj: Any, name: str, check: str) -> list[bytes]:
    values = obj.get(name) if isinstance(obj, dict) else None
    _require(isinstance(values, list), check, f"{name} must be a list of base64 hashes")
    assert isinstance(values, list)
    return [_hash(check, name, v) for v in values]


def _hash(check: str, name: str, value: Any) -> bytes:
    return _parsed(check, lambda: signing.unb64(value, field=name, size=merkle.HASH_SIZE))


def _signed_head(obj: Any, prefix: str, public: Any) -> SignedTreeHead:
    sth = _parsed(f"{prefix}-format", lambda: SignedTreeHead.from_json(obj, field=prefix))
    key_id = signing.key_id_of(public)
    _require(
        sth.key_id == key_id,
        f"{prefix}-key-id",
        f"the tree head names key {sth.key_id}; the public key given is {key_id}",
    )
    _require(
        signing.verify_tree_head(sth, public),
        f"{prefix}-signature",
        "the tree head's signature does not verify with the public key",
    )
    return sth


def _check_entry(entry: Any, proof: Any) -> tuple[int, bytes, signing.Leaf]:
    listed = entry.get("entries") if isinstance(entry, dict) else None
    if isinstance(listed, list) and len(listed) == 1:  # a whole get-entries answer of one
        entry = listed[0]
    _require(isinstance(entry, dict), "entry-format", "the entry must be a JSON object")
    text = entry.get("leaf_input")
    _require(isinstance(text, str), "entry-format", "the entry needs leaf_input (text)")
    index = _int(entry, "leaf_index", "entry-format")
    data = str(text).encode("utf-8")
    leaf = _parsed("entry-format", lambda: signing.parse_leaf(data))
    _require(
        entry.get("kind", leaf.kind) == leaf.kind,
        "entry-format",
        f"the entry's kind {entry.get('kind')!r} is not its leaf's {leaf.kind!r}",
    )
    hashed = merkle.leaf_hash(data)
    for name, obj in (("entry", entry), ("proof", proof)):
        if isinstance(obj, dict) and "leaf_hash" in obj:
            given = _hash("leaf-hash", "leaf_hash", obj["leaf_hash"])
            _require(
                given == hashed,
                "leaf-hash",
                f"the {name}'s leaf_hash is not the hash of the entry's leaf_input",
            )
    return index, hashed, leaf


def check_bundle(
    *,
    entry: Any,
    proof: Any,
    sth: Any,
    public_key: str,
    old_sth: Any = None,
    consistency: Any = None,
) -> dict[str, Any]:
    """Verify downloaded log files; the verdict names every check passed or the one failed."""
    passed: list[str] = []
    try:
        public = _parsed("public-key", lambda: signing.load_public_key(public_key))
        head = _signed_head(sth, "sth", public)
        passed += ["public-key", "sth-format", "sth-key-id", "sth-signature"]
        index, hashed, leaf = _check_entry(entry, proof)
        passed += ["entry-format", "leaf-hash"]
        size = _int(proof, "tree_size", "proof-format")
        proof_index = _int(proof, "leaf_index", "proof-format")
        path = _hashes(proof, "audit_path", "proof-format")
        passed.append("proof-format")
        detail = f"the proof is for tree size {size}, the tree head signs {head.tree_size}"
        _require(size == head.tree_size, "proof-tree-size", detail)
        detail = f"the proof is for leaf {proof_index}, the entry is leaf {index}"
        _require(proof_index == index, "proof-leaf-index", detail)
        _require(
            merkle.verify_inclusion_hash(hashed, index, size, path, head.root_hash),
            "inclusion-proof",
            "the audit path does not lead from the leaf to the tree head's root",
        )
        passed += ["proof-tree-size", "proof-leaf-index", "inclusion-proof"]
        verdict: dict[str, Any] = {
            "ok": True,
            "leaf_index": index,
            "leaf_hash": signing.b64(hashed),
            "leaf": leaf.to_json(),
            "tree_size": head.tree_size,
            "root_hash": signing.b64(head.root_hash),
            "timestamp": head.timestamp,
            "key_id": head.key_id,
        }
        if old_sth is not None or consistency is not None:
            verdict["old_tree_size"] = _check_consistency(old_sth, consistency, head, public)
            passed += [
                "old-sth-format",
                "old-sth-key-id",
                "old-sth-signature",
                "consistency-format",
                "consistency-sizes",
                "consistency-proof",
            ]
    except CheckFailed as failed:
        return {"ok": False, "failed": failed.check, "detail": failed.detail, "passed": passed}
    verdict["passed"] = passed
    return verdict


def _check_consistency(old_sth: Any, consistency: Any, head: SignedTreeHead, public: Any) -> int:
    _require(
        old_sth is not None and consistency is not None,
        "consistency-format",
        "--old-sth and --consistency go together",
    )
    old = _signed_head(old_sth, "old-sth", public)
    first = _int(consistency, "first", "consistency-format")
    second = _int(consistency, "second", "consistency-format")
    proof = _hashes(consistency, "consistency", "consistency-format")
    _require(
        (first, second) == (old.tree_size, head.tree_size),
        "consistency-sizes",
        f"the proof is from {first} to {second}; the tree heads sign {old.tree_size} and "
        f"{head.tree_size}",
    )
    _require(
        merkle.verify_consistency(
            old.tree_size, head.tree_size, old.root_hash, head.root_hash, proof
        ),
        "consistency-proof",
        "the older tree head's tree is not a prefix of the newer one's",
    )
    return old.tree_size


def _read_json(path: Path, name: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _echo({"ok": False, "failed": "input", "detail": f"{name}: {exc}", "passed": []})
        raise typer.Exit(2) from None


@log_app.command("verify")
def verify_cmd(
    entry: Annotated[Path, typer.Option(help="one entry of GET /v1/log/entries (JSON)")],
    proof: Annotated[Path, typer.Option(help="GET /v1/log/proof-by-hash answer (JSON)")],
    sth: Annotated[Path, typer.Option(help="GET /v1/log/sth answer (JSON)")],
    public_key: Annotated[
        Path, typer.Option(help="base64 raw key, PEM, or GET /v1/log/public-key JSON")
    ],
    old_sth: Annotated[
        Path | None, typer.Option(help="an older tree head, to check consistency with --sth")
    ] = None,
    consistency: Annotated[
        Path | None, typer.Option(help="GET /v1/log/consistency answer from old to new")
    ] = None,
) -> None:
    """Check an entry against a signed tree head with no database: the STH's signature, the
    leaf hash, the inclusion proof (and optionally the consistency of two STHs)."""
    try:
        key_text = public_key.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _echo({"ok": False, "failed": "input", "detail": f"public key: {exc}", "passed": []})
        raise typer.Exit(2) from None
    verdict = check_bundle(
        entry=_read_json(entry, "entry"),
        proof=_read_json(proof, "proof"),
        sth=_read_json(sth, "sth"),
        public_key=key_text,
        old_sth=None if old_sth is None else _read_json(old_sth, "old sth"),
        consistency=None if consistency is None else _read_json(consistency, "consistency"),
    )
    _echo(verdict)
    if not verdict["ok"]:
        raise typer.Exit(1)
