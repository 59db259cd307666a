"""Loan statement: balances derived from the ledger beside the installment sub-ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.core.money import CENT, ZERO
from mobilend.ledger.accounts import Account
from mobilend.ledger.service import loan_balances
from mobilend.loans.models import Installment, Loan, Repayment
from mobilend.loans.service import get_loan


def money(amount: Decimal) -> str:
    """Money as a decimal string in minor units ("0.00", not "0")."""
    return str((amount + 0).quantize(CENT))  # + 0 turns -0.00 into 0.00


def subledger_totals(loan: Loan) -> dict[Account, Decimal]:
    """Receivables as the installment sub-ledger sees them (must equal the ledger's)."""
    live = [i for i in loan.installments if not i.cancelled]
    return {
        Account.PRINCIPAL_RECEIVABLE: sum((i.principal - i.paid_principal for i in live), ZERO),
        Account.INTEREST_RECEIVABLE: sum(
            (i.interest_accrued - i.paid_interest for i in live), ZERO
        ),
        Account.FEE_RECEIVABLE: sum((i.fee_charged - i.paid_fee for i in live), ZERO),
        Account.PENALTY_RECEIVABLE: sum((i.penalty_charged - i.paid_penalty for i in live), ZERO),
    }


def _installment_view(i: Installment) -> dict[str, Any]:
    owed = (
        (i.principal - i.paid_principal)
        + (i.interest - i.paid_interest)
        + (max(i.fee, i.fee_charged) - i.paid_fee)
        + (i.penalty_charged - i.paid_penalty)
    )
    return {
        "number": i.number,
        "start_date": i.start_date.isoformat(),
        "due_date": i.due_date.isoformat(),
        "principal": money(i.principal),
        "interest": money(i.interest),
        "fee": money(max(i.fee, i.fee_charged)),
        "penalty": money(i.penalty_charged),
        "interest_accrued": money(i.interest_accrued),
        "paid_principal": money(i.paid_principal),
        "paid_interest": money(i.paid_interest),
        "paid_fee": money(i.paid_fee),
        "paid_penalty": money(i.paid_penalty),
        "outstanding": money(owed),
        "status": "cancelled" if i.cancelled else ("paid" if owed == 0 else "open"),
    }


def _receivables(bal: dict[Account, Decimal]) -> dict[str, Decimal]:
    return {
        "principal": bal[Account.PRINCIPAL_RECEIVABLE],
        "interest": bal[Account.INTEREST_RECEIVABLE],
        "fee": bal[Account.FEE_RECEIVABLE],
        "penalty": bal[Account.PENALTY_RECEIVABLE],
    }


def _head(loan: Loan, bal: dict[Account, Decimal]) -> dict[str, Any]:
    receivables = _receivables(bal)
    return {
        "status": loan.status,
        "accrued_through": loan.accrued_through.isoformat() if loan.accrued_through else None,
        "balances": {k: money(v) for k, v in receivables.items()},
        "total_outstanding": money(sum(receivables.values(), ZERO)),
        "credit_balance": money(-bal[Account.SUSPENSE]),
    }


def summary(session: Session, loan_id: int) -> dict[str, Any]:
    """The loan's status and ledger balances: what a money-moving response carries."""
    loan = get_loan(session, loan_id)
    return {"id": loan.id, **_head(loan, loan_balances(session, loan.id))}


def statement(session: Session, loan_id: int) -> dict[str, Any]:
    loan = get_loan(session, loan_id)
    bal = loan_balances(session, loan.id)
    repayments = session.scalars(
        select(Repayment).where(Repayment.loan_id == loan.id).order_by(Repayment.id)
    )
    return {
        "loan_id": loan.id,
        "currency": loan.currency,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        **_head(loan, bal),
        "written_off": money(bal[Account.WRITE_OFF_EXPENSE]),
        "recovered": money(-bal[Account.RECOVERY_INCOME]),
        "income": {
            "interest": money(-bal[Account.INTEREST_INCOME]),
            "fee": money(-bal[Account.FEE_INCOME]),
            "penalty": money(-bal[Account.PENALTY_INCOME]),
        },
        "installments": [_installment_view(i) for i in loan.installments],
        "repayments": [
            {
                "id": r.id,
                "kind": r.kind,
                "amount": money(r.amount),
                "value_date": r.value_date.isoformat(),
                "status": r.status,
                "unallocated": money(r.unallocated),
                "entry_id": r.entry_id,
                "reference": r.reference,
            }
            for r in repayments
        ],
    }
