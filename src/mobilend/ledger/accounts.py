"""Chart of accounts (pure). Lines carry an account code and, for loan sub-accounts, a loan id.

Amounts on lines are signed: debit positive, credit negative. An entry balances when its lines
sum to zero per currency.
"""

from __future__ import annotations

from enum import StrEnum


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


class Account(StrEnum):
    PRINCIPAL_RECEIVABLE = "principal_receivable"
    INTEREST_RECEIVABLE = "interest_receivable"
    FEE_RECEIVABLE = "fee_receivable"
    PENALTY_RECEIVABLE = "penalty_receivable"
    CASH = "cash"  # settlement / bank clearing
    INTEREST_INCOME = "interest_income"
    FEE_INCOME = "fee_income"
    PENALTY_INCOME = "penalty_income"
    SUSPENSE = "suspense"  # borrower credit balance (overpayments)
    WRITE_OFF_EXPENSE = "write_off_expense"
    RECOVERY_INCOME = "recovery_income"


CHART: dict[Account, tuple[AccountKind, str, str]] = {
    Account.PRINCIPAL_RECEIVABLE: (AccountKind.ASSET, "Principal receivable", "应收本金"),
    Account.INTEREST_RECEIVABLE: (AccountKind.ASSET, "Interest receivable", "应收利息"),
    Account.FEE_RECEIVABLE: (AccountKind.ASSET, "Fee receivable", "应收费用"),
    Account.PENALTY_RECEIVABLE: (AccountKind.ASSET, "Penalty interest receivable", "应收罚息"),
    Account.CASH: (AccountKind.ASSET, "Cash / settlement", "现金/清算"),
    Account.INTEREST_INCOME: (AccountKind.INCOME, "Interest income", "利息收入"),
    Account.FEE_INCOME: (AccountKind.INCOME, "Fee income", "手续费收入"),
    Account.PENALTY_INCOME: (AccountKind.INCOME, "Penalty interest income", "罚息收入"),
    Account.SUSPENSE: (AccountKind.LIABILITY, "Suspense / borrower credit", "暂收款/溢缴款"),
    Account.WRITE_OFF_EXPENSE: (AccountKind.EXPENSE, "Write-off expense", "核销损失"),
    Account.RECOVERY_INCOME: (AccountKind.INCOME, "Recovery after write-off", "核销后收回"),
}

RECEIVABLES = (
    Account.PRINCIPAL_RECEIVABLE,
    Account.INTEREST_RECEIVABLE,
    Account.FEE_RECEIVABLE,
    Account.PENALTY_RECEIVABLE,
)
