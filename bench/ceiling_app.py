"""The smallest honest app for the HTTP ceiling benchmark (bench/http_ceiling.py).

Two endpoints shaped like `POST /v1/loans/{id}/repayments`: the same JSON body, the same
Idempotency-Key header and a 201 JSON answer, with no authentication, ledger or allocation.
`/noop/{loan_id}` touches no database; `/same-writes/{loan_id}` runs the bare transaction
that does a repayment's reads and writes (bench/repayments.py `same_writes_tx`) on a
per-thread psycopg connection. Served by uvicorn exactly as `mobilend serve` is.
"""

from __future__ import annotations

import os
import threading
from typing import Annotated

import psycopg
from fastapi import FastAPI, Header
from pydantic import BaseModel
from repayments import SAME_WRITES_RESPONSE, same_writes_tx

app = FastAPI()
_local = threading.local()


class RepaymentIn(BaseModel):
    amount: str
    reference: str | None = None


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = psycopg.connect(os.environ["CEILING_DATABASE_URL"], autocommit=True)
        _local.conn = conn
    return conn


@app.post("/noop/{loan_id}", status_code=201)
def noop(
    loan_id: int, body: RepaymentIn, idempotency_key: Annotated[str, Header()]
) -> dict[str, object]:
    return {"result": {"loan_id": loan_id, "amount": body.amount}, "loan": {"id": loan_id}}


@app.post("/same-writes/{loan_id}", status_code=201)
def same_writes(loan_id: int, body: RepaymentIn, idempotency_key: Annotated[str, Header()]) -> str:
    same_writes_tx(_conn(), loan_id % 400 + 1, idempotency_key)
    return SAME_WRITES_RESPONSE
