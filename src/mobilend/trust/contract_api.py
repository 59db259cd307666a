"""HTTP routes of e-contracts: draft, documents, signing code, signature, verification.

The signing code goes to the borrower's phone through the outbox and is never in an answer.
A wrong code is a 422 problem on field "code"; an expired code, too many attempts or no
pending code a 409; the attempt is committed before the problem is returned.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from mobilend.api.auth import Principal, require
from mobilend.core.errors import MobilendError
from mobilend.db.session import unit_of_work
from mobilend.origination.api import request_cipher
from mobilend.trust import contracts
from mobilend.trust.contracts import ContractConfig

router = APIRouter(prefix="/v1", tags=["contracts"])


class ContractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Literal["zh-CN", "en"] = "zh-CN"


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=12)
    consent_version: str = Field(min_length=1, max_length=32)
    device: str | None = Field(default=None, max_length=128, description="the device's id")


def contract_config(request: Request) -> ContractConfig:
    """Built from the settings (and the MOBILEND_CONTRACT_* variables) once per app."""
    state = request.app.state
    config: ContractConfig | None = getattr(state, "contract_config", None)
    if config is None or config.data_dir != state.settings.data_dir:
        config = ContractConfig.from_settings(state.settings)
        state.contract_config = config
    return config


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


def _today(request: Request) -> date:
    today: date = request.app.state.clock.today()
    return today


@router.post("/loans/{loan_id}/contracts", status_code=201)
def create_contract(
    loan_id: int,
    body: ContractIn,
    request: Request,
    principal: Principal = require("contracts:write"),
) -> Any:
    """Render the loan agreement and key facts of an approved loan as a draft PDF."""
    config = contract_config(request)
    with unit_of_work(request.app.state.sessions) as session:
        contract = contracts.create_contract(
            session,
            loan_id=loan_id,
            language=body.language,
            now=_now(request),
            today=_today(request),
            config=config,
            cipher=request_cipher(request),
            actor=principal.name,
        )
        return contracts.contract_json(contract)


@router.get("/contracts/{contract_id}")
def get_contract(
    contract_id: int, request: Request, _: Principal = require("contracts:read")
) -> Any:
    with unit_of_work(request.app.state.sessions) as session:
        return contracts.contract_json(contracts.get_contract(session, contract_id))


@router.get("/contracts/{contract_id}/document")
def get_document(
    contract_id: int,
    request: Request,
    kind: Literal["draft", "signed"] = Query("draft"),
    _: Principal = require("contracts:read"),
) -> Response:
    """The draft or the signed PDF (refused with 409 if the stored file lost its hash)."""
    config = contract_config(request)
    with unit_of_work(request.app.state.sessions) as session:
        contract, data = contracts.document(
            session, contract_id=contract_id, kind=kind, config=config
        )
        name = f"{contracts.contract_no(contract)}-{kind}.pdf"
    headers = {"Content-Disposition": f'inline; filename="{name}"'}
    return Response(data, media_type="application/pdf", headers=headers)


@router.post("/contracts/{contract_id}/signing-codes", status_code=202)
def send_signing_code(
    contract_id: int, request: Request, _: Principal = require("contracts:write")
) -> Any:
    """Text a one-time code to the borrower (through the outbox); the code is not returned."""
    with unit_of_work(request.app.state.sessions) as session:
        issued = contracts.send_signing_code(
            session,
            contract_id=contract_id,
            now=_now(request),
            today=_today(request),
            config=contract_config(request),
            cipher=request_cipher(request),
        )
    return {
        "contract_id": issued.contract_id,
        "sent_to": issued.sent_to,
        "expires_at": issued.expires_at.isoformat(),
        "attempts_allowed": contracts.MAX_ATTEMPTS,
    }


@router.post("/contracts/{contract_id}/signature")
def sign(
    contract_id: int,
    body: SignatureIn,
    request: Request,
    _: Principal = require("contracts:write"),
) -> Any:
    """The borrower's code and consent; then the lender's PAdES signature and the log leaf."""
    device = {
        "device_id": body.device,
        "user_agent": request.headers.get("user-agent"),
        "ip": request.client.host if request.client else None,
    }
    error: MobilendError | None = None
    with unit_of_work(request.app.state.sessions) as session:
        outcome = contracts.sign_contract(
            session,
            contract_id=contract_id,
            code=body.code,
            consent_version=body.consent_version,
            device=device,
            now=_now(request),
            config=contract_config(request),
        )
        if isinstance(outcome, contracts.Refused):
            error = outcome.error  # raised after the commit: the attempt counts
        else:
            result = contracts.contract_json(outcome.contract)
    if error is not None:
        raise error
    return result


@router.get("/contracts/{contract_id}/verification")
def verification(
    contract_id: int, request: Request, _: Principal = require("contracts:read")
) -> Any:
    """pyHanko's verdict on the signature, the stored file's hash and the log leaf."""
    with unit_of_work(request.app.state.sessions) as session:
        found = contracts.verify_contract(
            session, contract_id=contract_id, config=contract_config(request), now=_now(request)
        )
    return found.to_json()
