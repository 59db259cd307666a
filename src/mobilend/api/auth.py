"""API credentials (bearer tokens) and role permissions. Every route declares its permission."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.api import audit
from mobilend.api.models import ApiCredential

CACHE_SECONDS = 30.0  # a revoked credential stops working within this time

PERMISSIONS = (
    "products:read",
    "products:write",
    "quotes:create",
    "loans:read",
    "loans:write",
    "payments:write",
    "ledger:read",
    "borrowers:read",
    "borrowers:write",
    "consents:write",
    "applications:write",
    "applications:read",
    "applications:review",
    "decisions:explain",
    "collateral:read",
    "collateral:write",
    "devices:command",
    "log:read",
    "log:write",
    "audit:read",  # the operators' audit trail (admin only)
    "contracts:read",
    "contracts:write",
    "collections:read",  # queues, cases, contacts (masked), actions, promises
    "collections:write",  # work cases: assign, act, promise, offer restructuring, escalate
    "portfolio:read",  # portfolio figures: PAR, NPL, roll rates, vintages, collection rate
    "close:read",  # daily close runs and their progress
    "close:run",  # start or resume the daily close
    # Device routes: the caller is a phone proving itself with a one-time token (enroll) or its
    # own Ed25519 signature (check-in), never a bearer credential; no role holds these.
    "devices:enroll",
    "devices:check-in",
)
DEVICE_PERMISSIONS = frozenset({"devices:enroll", "devices:check-in"})
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS) - DEVICE_PERMISSIONS,
    "officer": frozenset(PERMISSIONS) - DEVICE_PERMISSIONS - {"products:write", "audit:read"},
    "viewer": frozenset(
        {
            "products:read",
            "quotes:create",
            "loans:read",
            "ledger:read",
            "borrowers:read",
            "applications:read",
            "collateral:read",
            "log:read",
            "contracts:read",
            "collections:read",
            "close:read",
            "portfolio:read",
        }
    ),
    # A collections agent works cases; accepting a restructuring changes the loan (loans:write).
    "collector": frozenset({"collections:read", "collections:write", "loans:read"}),
}


@dataclass(frozen=True)
class Principal:
    credential_id: int
    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_credential(session: Session, *, name: str, role: str) -> tuple[ApiCredential, str]:
    """Create a credential and return it with its token (shown once, stored only as a hash)."""
    if role not in ROLES:
        from mobilend.core.errors import ValidationFailed

        raise ValidationFailed("role", "known-role", f"role must be one of {sorted(ROLES)}")
    token = "mlk_" + secrets.token_urlsafe(32)
    credential = ApiCredential(name=name, role=role, token_hash=hash_token(token), revoked=False)
    session.add(credential)
    session.flush()
    return credential, token


def revoke_credential(session: Session, credential_id: int) -> ApiCredential:
    credential = session.get(ApiCredential, credential_id)
    if credential is None:
        from mobilend.core.errors import NotFound

        raise NotFound(f"credential {credential_id} not found", field="id")
    credential.revoked = True
    session.flush()
    return credential


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def require(permission: str):  # type: ignore[no-untyped-def]
    """Dependency: the caller must hold a credential whose role grants `permission`."""
    assert permission in PERMISSIONS, permission

    def dependency(request: Request) -> Principal:
        token = _token(request)
        if not token:
            audit.auth_failed(
                request, status=401, reason="missing-credential", permission=permission
            )
            raise HTTPException(
                401, "an API credential is required", {"WWW-Authenticate": "Bearer"}
            )
        cache: dict[str, tuple[Principal, float]] = request.app.state.credential_cache
        cached = cache.get(token)
        principal = cached[0] if cached and cached[1] > time.monotonic() else None
        if principal is None:
            with request.app.state.sessions() as session:
                cred = session.scalar(
                    select(ApiCredential).where(ApiCredential.token_hash == hash_token(token))
                )
            if cred is None or cred.revoked:
                audit.auth_failed(
                    request,
                    status=401,
                    reason="unknown-credential" if cred is None else "revoked-credential",
                    permission=permission,
                    token=token,
                    principal=None if cred is None else Principal(cred.id, cred.name, cred.role),
                )
                raise HTTPException(
                    401, "unknown or revoked API credential", {"WWW-Authenticate": "Bearer"}
                )
            principal = Principal(cred.id, cred.name, cred.role)
            cache[token] = (principal, time.monotonic() + CACHE_SECONDS)
        if permission not in ROLES.get(principal.role, frozenset()):
            audit.auth_failed(
                request,
                status=403,
                reason="permission-denied",
                permission=permission,
                principal=principal,
            )
            raise HTTPException(403, f"role {principal.role!r} lacks permission {permission!r}")
        audit.authenticated(request, principal, permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)
