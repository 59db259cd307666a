"""HTTP routes of the device-lock controller (thin: parse, call collateral.devices, shape).

Two kinds of caller. A phone enrolls with its one-time provisioning token and then checks in
with envelopes signed by its own Ed25519 key: those routes take no bearer credential (the
service authenticates the phone) and declare their permission with `device_route`. Operators
use bearer credentials as everywhere else (`collateral:read`, `devices:command`).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mobilend.api.auth import DEVICE_PERMISSIONS, Principal, require
from mobilend.collateral import devices
from mobilend.db.session import unit_of_work

router = APIRouter(prefix="/v1", tags=["devices"])


def device_route(permission: str) -> Any:
    """Dependency for the routes a phone calls: no bearer credential is read or required.

    The phone proves itself in the request (a one-time token, or a signature the service
    verifies); this only declares the route's permission, as every route must.
    """
    assert permission in DEVICE_PERMISSIONS, permission

    def dependency() -> None:
        return None

    dependency.permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["lock", "unlock", "reminder"]
    reason: str = Field(min_length=1, max_length=devices.OPERATOR_REASON_MAX)
    message: str | None = None  # the text on the phone; default: the standard one (zh-CN)


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _data_dir(request: Request) -> Path:
    data_dir: Path = request.app.state.settings.data_dir
    return data_dir


# ------------------------------------------------------------------ the phone


@router.post("/devices/enroll", status_code=201)
def enroll(
    request: Request,
    body: dict[str, Any] = Body(...),
    _: None = device_route("devices:enroll"),
) -> JSONResponse:
    """Enroll a phone: {provisioning_token, public_key, imeis, sim_mcc_mnc} (token used once)."""
    with unit_of_work(request.app.state.sessions) as session:
        out = devices.enroll(
            session, body=body, on=_today(request), now=_now(request), data_dir=_data_dir(request)
        )
    return JSONResponse(out, status_code=201)


@router.post("/devices/{device_id}/check-in")
def check_in(
    device_id: str,
    request: Request,
    envelope: Any = Body(...),
    _: None = device_route("devices:check-in"),
) -> dict[str, Any]:
    """A signed check-in envelope in; the open signed commands and the offline deadline out."""
    with unit_of_work(request.app.state.sessions) as session:
        return devices.check_in(
            session,
            device_id=device_id,
            envelope=envelope,
            on=_today(request),
            now=_now(request),
            data_dir=_data_dir(request),
        )


# ------------------------------------------------------------------ operators


@router.get("/devices/{device_id}")
def get_device(
    device_id: str, request: Request, _: Principal = require("collateral:read")
) -> dict[str, Any]:
    with unit_of_work(request.app.state.sessions) as session:
        return devices.device_status(session, device_id)


@router.get("/devices/{device_id}/commands")
def get_commands(
    device_id: str,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = require("collateral:read"),
) -> list[dict[str, Any]]:
    with unit_of_work(request.app.state.sessions) as session:
        return devices.list_commands(session, device_id, limit=limit)


@router.post("/devices/{device_id}/commands", status_code=201)
def send_command(
    device_id: str,
    body: CommandIn,
    request: Request,
    who: Principal = require("devices:command"),
) -> JSONResponse:
    """Lock, unlock or remind by hand (audited with the operator's name and reason)."""
    with unit_of_work(request.app.state.sessions) as session:
        row = devices.operator_command(
            session,
            device_id=device_id,
            action=body.action,
            reason=body.reason,
            message=body.message,
            actor=who.name,
            on=_today(request),
            now=_now(request),
            data_dir=_data_dir(request),
        )
        out = devices.command_json(row)
    return JSONResponse(out, status_code=201)


@router.post("/devices/policy-runs")
def run_policy(request: Request, _: Principal = require("devices:command")) -> dict[str, Any]:
    """Apply the lock policy to every enrolled phone for today (the daily close does this)."""
    today = _today(request)
    with unit_of_work(request.app.state.sessions) as session:
        counts = devices.run_policy(
            session, on=today, now=_now(request), data_dir=_data_dir(request)
        )
    return {"business_date": today.isoformat(), **counts}
