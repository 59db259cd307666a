"""RFC 9457 problem details for every error, naming the field at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from mobilend.core.errors import MobilendError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://mobilend.dev/problems/"


def problem(
    status: int, type_: str, title: str, detail: str, field: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(MobilendError)
    async def _domain(_: Request, exc: MobilendError) -> JSONResponse:
        return problem(exc.status, exc.type, exc.title, exc.detail, exc.field, rule=exc.rule)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        field = _loc(tuple(first.get("loc", ())))
        msg = str(first.get("msg", "invalid"))
        return problem(
            422,
            "validation-failed",
            "Invalid input",
            f"{field}: {msg}",
            field,
            rule=str(first.get("type", "invalid")),
            errors=[
                {
                    "field": _loc(tuple(e.get("loc", ()))),
                    "rule": e.get("type"),
                    "detail": e.get("msg"),
                }
                for e in errors
            ],
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        slug = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        resp = problem(exc.status_code, slug.get(exc.status_code, "http-error"), detail, detail)
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        return problem(409, "conflict", "Conflict", "the change conflicts with stored data")
