"""Import every model so the metadata is complete (Alembic, tests)."""

from mobilend.api.audit_models import AuditEvent
from mobilend.api.models import ApiCredential, IdempotencyRecord
from mobilend.collateral.models import (
    CollateralEvent,
    CollateralTerms,
    Device,
    DeviceCheckIn,
    DeviceCommand,
    DeviceModel,
    DeviceTac,
    DeviceVariant,
    MarginCall,
    Pledge,
    PriceQuote,
)
from mobilend.collections.models import (
    CollectionAction,
    CollectionAgent,
    CollectionCase,
    CollectionContact,
    CollectionRefusal,
    LegalEscalation,
    PromiseRecord,
    Restructuring,
)
from mobilend.db.base import Base
from mobilend.decisioning.models import Application, DecisionRecord
from mobilend.ledger.models import JournalEntry, JournalLine, LedgerAccount
from mobilend.loans.models import Allocation, Installment, Loan, Product, Repayment
from mobilend.notify.models import OutboxMessage
from mobilend.origination.models import Borrower, Consent
from mobilend.servicing.models import (
    CloseRun,
    CloseTask,
    DelinquencyEvent,
    DelinquencySnapshot,
    LoanDelinquency,
)
from mobilend.trust.contract_models import Contract, SigningCode
from mobilend.trust.models import LogEntry, LogHead, LogNode, PendingEntry, TreeHead

__all__ = [
    "Allocation",
    "ApiCredential",
    "Application",
    "AuditEvent",
    "Base",
    "Borrower",
    "CloseRun",
    "CloseTask",
    "CollateralEvent",
    "CollateralTerms",
    "CollectionAction",
    "CollectionAgent",
    "CollectionCase",
    "CollectionContact",
    "CollectionRefusal",
    "Consent",
    "Contract",
    "DecisionRecord",
    "DelinquencyEvent",
    "DelinquencySnapshot",
    "Device",
    "DeviceCheckIn",
    "DeviceCommand",
    "DeviceModel",
    "DeviceTac",
    "DeviceVariant",
    "IdempotencyRecord",
    "Installment",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
    "LegalEscalation",
    "Loan",
    "LoanDelinquency",
    "LogEntry",
    "LogHead",
    "LogNode",
    "MarginCall",
    "OutboxMessage",
    "PendingEntry",
    "Pledge",
    "PriceQuote",
    "Product",
    "PromiseRecord",
    "Repayment",
    "Restructuring",
    "SigningCode",
    "TreeHead",
]
