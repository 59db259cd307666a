"""Import every model so the metadata is complete (Alembic, tests)."""

from mobilend.api.models import ApiCredential, IdempotencyRecord
from mobilend.db.base import Base
from mobilend.decisioning.models import Application, DecisionRecord
from mobilend.ledger.models import JournalEntry, JournalLine, LedgerAccount
from mobilend.loans.models import Allocation, Installment, Loan, Product, Repayment
from mobilend.origination.models import Borrower, Consent

__all__ = [
    "Allocation",
    "ApiCredential",
    "Application",
    "Base",
    "Borrower",
    "Consent",
    "DecisionRecord",
    "IdempotencyRecord",
    "Installment",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
    "Loan",
    "Product",
    "Repayment",
]
