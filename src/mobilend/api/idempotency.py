"""Idempotency-Key handling for money-moving POSTs (Stripe-style).

The key, a hash of the request and the response are stored in the same transaction as the
effect. Same key + same request -> the stored response; same key + another request -> 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilend.api.auth import Principal
from mobilend.api.models import IdempotencyRecord
from mobilend.api.problems import problem
from mobilend.db.session import unit_of_work

HEADER = "Idempotency-Key"


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_idempotent(
    request: Request,
    principal: Principal,
    body: Any,
    effect: Callable[[Session], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    key = request.headers.get(HEADER)
    if not key:
        return problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            "money-moving requests need an Idempotency-Key header",
            HEADER,
            rule="required",
        )
    if len(key) > 255:
        return problem(
            422,
            "validation-failed",
            "Invalid input",
            "Idempotency-Key is too long",
            HEADER,
            rule="max-length-255",
        )
    digest = request_hash(request.method, request.url.path, body)
    factory = request.app.state.sessions
    for _attempt in range(2):
        try:
            with unit_of_work(factory) as session:
                stored = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.credential_id == principal.credential_id,
                        IdempotencyRecord.key == key,
                    )
                )
                if stored is not None:
                    return _replay(stored, digest)
                status, response = effect(session)
                session.add(
                    IdempotencyRecord(
                        credential_id=principal.credential_id,
                        key=key,
                        request_hash=digest,
                        status_code=status,
                        response=response,
                    )
                )
                session.flush()
            return JSONResponse(response, status_code=status)
        except IntegrityError:
            if _attempt:  # not a lost race on the key: the effect itself conflicts
                raise
            # a concurrent request with the same key may have won: read its stored response
    raise AssertionError("unreachable")


def _replay(stored: IdempotencyRecord, digest: str) -> JSONResponse:
    if stored.request_hash != digest:
        return problem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request",
            HEADER,
            rule="same-request",
        )
    resp = JSONResponse(stored.response, status_code=stored.status_code)
    resp.headers["Idempotent-Replayed"] = "true"
    return resp
