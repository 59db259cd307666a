"""The flat feature dict the decision engine scores (pure).

`build_features` always returns every name in `FEATURE_DOCS`. A source that was not obtained
(None) gives None for all of its features: nothing is imputed here, that is the model's choice.
A bureau `NoReport` (thin file) is information, not a missing source: counts are 0, balances 0,
`bureau_thin_file` is True and figures that need an account (worst DPD, utilisation, history)
are None.

Applicant keys read: ``birth_date`` (date or YYYY-MM-DD), ``income_monthly`` (declared net
monthly income: decimal string, int or Decimal) and the optional ``monthly_debt_payments``
(declared monthly payments on debts the bureau does not report; 0 when not given).

Time windows count back from `as_of`: an event d days before as_of (d = (as_of - date).days) is
in the "last N days" when 0 <= d < N. So with as_of 2025-06-30, an inquiry on 2025-06-01
(d = 29) is in `applications_30d` and one on 2025-05-31 (d = 30) is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import parse_amount
from mobilend.decisioning.sources.bureau import (
    NON_BANK_LENDERS,
    AccountStatus,
    BureauReport,
    InquiryReason,
    NoReport,
)
from mobilend.decisioning.sources.device import DEVICE_FEATURE_DOCS, DeviceSignals, device_features
from mobilend.decisioning.sources.social import (
    SOCIAL_FEATURE_DOCS,
    SentimentScorer,
    SocialMetrics,
    social_features,
)

FeatureValue = float | int | bool | str | None

APPLICANT_FEATURE_DOCS: dict[str, dict[str, str]] = {
    "age": {"en": "Age in whole years at as_of, from birth_date", "zh": "年龄", "unit": "years"},
    "income_monthly": {
        "en": "Declared monthly income",
        "zh": "月收入",
        "unit": "currency per month",
    },
    "dti": {
        "en": "(bureau monthly payments on open accounts + declared monthly_debt_payments) "
        "/ income_monthly; None without a bureau answer or with zero income",
        "zh": "负债收入比",
        "unit": "ratio",
    },
}

BUREAU_FEATURE_DOCS: dict[str, dict[str, str]] = {
    "bureau_thin_file": {
        "en": "No bureau file (NoReport) or a file with no accounts",
        "zh": "征信白户/薄档",
        "unit": "bool",
    },
    "bureau_report_age_days": {
        "en": "as_of - report_date",
        "zh": "征信报告距今天数",
        "unit": "days",
    },
    "applications_30d": {
        "en": "Inquiries with reason loan_approval dated 0 <= (as_of - date).days < 30",
        "zh": "近30天贷款审批查询次数",
        "unit": "count",
    },
    "applications_90d": {
        "en": "Inquiries with reason loan_approval dated 0 <= (as_of - date).days < 90",
        "zh": "近90天贷款审批查询次数",
        "unit": "count",
    },
    "active_accounts": {
        "en": "Accounts open on the report date",
        "zh": "未结清账户数",
        "unit": "count",
    },
    "other_platform_loans": {
        "en": "Open accounts with online_platform, microloan or consumer_finance lenders",
        "zh": "多头借贷数（非银机构未结清账户）",
        "unit": "count",
    },
    "overdue_accounts": {
        "en": "Open accounts with status overdue",
        "zh": "当前逾期账户数",
        "unit": "count",
    },
    "worst_dpd_24m": {
        "en": "Worst days past due in 24 months over all accounts; None without accounts",
        "zh": "近24个月最高逾期天数",
        "unit": "days",
    },
    "total_bureau_balance": {
        "en": "Sum of balances of open accounts",
        "zh": "征信未结清余额合计",
        "unit": "currency",
    },
    "bureau_monthly_payments": {
        "en": "Sum of monthly payments of open accounts",
        "zh": "征信月还款额合计",
        "unit": "currency per month",
    },
    "bureau_utilisation": {
        "en": "Sum of balances / sum of limits of open accounts",
        "zh": "授信使用率",
        "unit": "ratio",
    },
    "bureau_history_months": {
        "en": "Whole months from the earliest account opening to as_of",
        "zh": "信用历史长度",
        "unit": "months",
    },
    "court_judgments": {
        "en": "Court judgments on file (satisfied or not)",
        "zh": "法院判决记录数",
        "unit": "count",
    },
    "blacklisted": {
        "en": "Any blacklist flag on file (dishonest debtor, fraud, ...)",
        "zh": "命中黑名单",
        "unit": "bool",
    },
}

FEATURE_DOCS: dict[str, dict[str, str]] = {
    **APPLICANT_FEATURE_DOCS,
    **BUREAU_FEATURE_DOCS,
    **DEVICE_FEATURE_DOCS,
    **SOCIAL_FEATURE_DOCS,
}


def build_features(
    *,
    applicant: Mapping[str, object],
    bureau: BureauReport | NoReport | None,
    device: DeviceSignals | None,
    social: SocialMetrics | None,
    as_of: date,
    sentiment: SentimentScorer | None = None,
) -> dict[str, FeatureValue]:
    """Every feature in FEATURE_DOCS; `sentiment` scores comments (default SnowNLP)."""
    features: dict[str, FeatureValue] = dict.fromkeys(FEATURE_DOCS)
    income = _amount(applicant, "income_monthly")
    features["age"] = _age(applicant, as_of)
    features["income_monthly"] = float(income) if income is not None else None
    if bureau is not None:
        bureau_monthly = _bureau_features(bureau, as_of, features)
        declared = _amount(applicant, "monthly_debt_payments") or Decimal(0)
        if income:
            features["dti"] = float((bureau_monthly + declared) / income)
    if device is not None:
        features.update(device_features(device, as_of=as_of))
    if social is not None:
        features.update(social_features(social, as_of=as_of, sentiment=sentiment))
    return features


def _age(applicant: Mapping[str, object], as_of: date) -> int | None:
    raw = applicant.get("birth_date")
    if raw is None:
        return None
    try:
        born = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationFailed("birth_date", "date", "birth_date must be YYYY-MM-DD") from None
    if born > as_of:
        raise ValidationFailed("birth_date", "past", "birth_date is after the as-of date")
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def _amount(applicant: Mapping[str, object], key: str) -> Decimal | None:
    raw = applicant.get(key)
    return None if raw is None else parse_amount(raw, field=key, allow_zero=True)


def _bureau_features(
    bureau: BureauReport | NoReport, as_of: date, out: dict[str, FeatureValue]
) -> Decimal:
    """Fill the bureau features into `out`; return the open accounts' monthly payments."""
    if isinstance(bureau, NoReport):
        out.update(
            dict.fromkeys(
                ("applications_30d", "applications_90d", "active_accounts", "court_judgments"), 0
            ),
            other_platform_loans=0,
            overdue_accounts=0,
            total_bureau_balance=0.0,
            bureau_monthly_payments=0.0,
            bureau_thin_file=True,
            blacklisted=False,
        )
        return Decimal(0)
    if bureau.report_date > as_of:
        raise ValidationFailed(
            "bureau.report_date", "not-after-as-of", f"bureau report is dated after {as_of}"
        )
    open_accounts = [a for a in bureau.accounts if a.is_open(bureau.report_date)]
    loan_ages = [
        (as_of - q.date).days for q in bureau.inquiries if q.reason is InquiryReason.LOAN_APPROVAL
    ]
    monthly = sum((a.monthly_payment for a in open_accounts), Decimal(0))
    balance = sum((a.balance for a in open_accounts), Decimal(0))
    limit = sum((a.limit for a in open_accounts), Decimal(0))
    first_opened = min((a.opened for a in bureau.accounts), default=None)
    out.update(
        bureau_thin_file=not bureau.accounts,
        bureau_report_age_days=(as_of - bureau.report_date).days,
        applications_30d=sum(1 for d in loan_ages if 0 <= d < 30),
        applications_90d=sum(1 for d in loan_ages if 0 <= d < 90),
        active_accounts=len(open_accounts),
        other_platform_loans=sum(1 for a in open_accounts if a.lender_type in NON_BANK_LENDERS),
        overdue_accounts=sum(1 for a in open_accounts if a.status is AccountStatus.OVERDUE),
        worst_dpd_24m=max((a.worst_dpd_24m for a in bureau.accounts), default=None),
        total_bureau_balance=float(balance),
        bureau_monthly_payments=float(monthly),
        bureau_utilisation=float(balance / limit) if limit else None,
        bureau_history_months=_whole_months(first_opened, as_of) if first_opened else None,
        court_judgments=len(bureau.court_judgments),
        blacklisted=bool(bureau.blacklist),
    )
    return monthly


def _whole_months(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - (end.day < start.day)
