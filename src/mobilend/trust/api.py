"""HTTP routes of the transparency log, shaped like Certificate Transparency's get-* calls.

Hashes and signatures are standard base64; a hash in the query string may also be hex (a
base64 ``+`` arrives as a space unless URL-encoded; both are accepted).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request

from mobilend.api.auth import Principal, require
from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.db.session import unit_of_work
from mobilend.trust import audit, log, merkle, signing

router = APIRouter(prefix="/v1/log", tags=["transparency log"])
HEX_HASH = re.compile(r"[0-9a-fA-F]{64}")


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _data_dir(request: Request) -> Path:
    data_dir: Path = request.app.state.settings.data_dir
    return data_dir


def parse_hash(text: str, *, field: str = "hash") -> bytes:
    """A 32-byte hash from 64 hex characters or base64 (standard or URL-safe)."""
    if HEX_HASH.fullmatch(text):
        return bytes.fromhex(text)
    cleaned = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(field, "hash", f"{field} must be base64 or hex") from None
    if len(data) != merkle.HASH_SIZE:
        raise ValidationFailed(field, "hash", f"{field} must be a 32-byte hash")
    return data


@router.get("/sth")
def get_sth(request: Request, _: Principal = require("log:read")) -> Any:
    """The latest signed tree head."""
    with unit_of_work(request.app.state.sessions) as session:
        sth = log.latest_tree_head(session)
    if sth is None:
        raise NotFound("no tree head has been signed yet", field="sth")
    return sth.to_json()


@router.post("/sth", status_code=201)
def post_sth(request: Request, _: Principal = require("log:write")) -> Any:
    """Append everything pending, then sign and publish a tree head now."""
    now = _now(request)
    log.relay(request.app.state.sessions, now=now)
    with unit_of_work(request.app.state.sessions) as session:
        sth = log.sign_tree_head(session, now=now, data_dir=_data_dir(request))
    return sth.to_json()


@router.get("/proof-by-hash")
def proof_by_hash(
    request: Request,
    hash: str = Query(..., min_length=1, max_length=100, description="leaf hash, base64 or hex"),
    tree_size: int = Query(..., description="size of a signed tree head"),
    _: Principal = require("log:read"),
) -> Any:
    """The inclusion proof (audit path) of a leaf, found by its hash, in a tree of this size."""
    leaf_hash = parse_hash(hash)
    with unit_of_work(request.app.state.sessions) as session:
        return log.inclusion_proof(session, leaf_hash=leaf_hash, tree_size=tree_size).to_json()


@router.get("/consistency")
def consistency(
    request: Request,
    first: int = Query(..., description="the older tree size"),
    second: int = Query(..., description="the newer tree size"),
    _: Principal = require("log:read"),
) -> Any:
    """The consistency proof that the tree of `first` leaves is a prefix of that of `second`."""
    with unit_of_work(request.app.state.sessions) as session:
        proof = log.consistency_proof(session, first=first, second=second)
    return {"first": first, "second": second, "consistency": [signing.b64(h) for h in proof]}


@router.get("/entries")
def get_entries(
    request: Request,
    start: int = Query(..., description="first leaf index"),
    end: int = Query(..., description="last leaf index, inclusive"),
    _: Principal = require("log:read"),
) -> Any:
    """Leaves start..end (at most 1000; fewer at the end of the tree)."""
    with unit_of_work(request.app.state.sessions) as session:
        return {"entries": [log.entry_json(e) for e in log.entries(session, start=start, end=end)]}


@router.get("/public-key")
def public_key(request: Request, _: Principal = require("log:read")) -> Any:
    """The tree-head signing key: raw Ed25519 public key (base64), PEM and key id."""
    return signing.public_key_json(signing.log_key(_data_dir(request)))


@router.post("/audits")
def run_audit(request: Request, _: Principal = require("log:write")) -> Any:
    """Recompute the whole log from its leaves and compare it with everything stored."""
    with unit_of_work(request.app.state.sessions) as session:
        return audit.audit(session, data_dir=_data_dir(request)).to_json()
