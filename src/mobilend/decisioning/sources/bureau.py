"""Credit-bureau reports in the `mobilend-bureau/1` JSON format, and adapters that fetch them.

A report names its subject by a hash only (64 lowercase hex characters, e.g. the HMAC blind
index of the ID number): it carries no name, ID number, phone or address, and the parser
rejects any field the format does not define. The format is described with an example in
docs/data-sources.md.

Adapters share one interface, `BureauAdapter.fetch(subject_hash, *, as_of=...)`, which returns a
`BureauReport` or, when the bureau holds no file on the subject (a thin file), a `NoReport`:
that is a normal outcome, not an error.

- `FileBureau(directory)` reads ``<subject_hash>.json`` from a directory.
- `SimulatedBureau(seed)` invents a plausible report from the subject hash. It is SIMULATED
  data for demos and tests, deterministic for a given seed, subject hash and as-of date.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources._schema import HEX64, Obj, load_json

FORMAT = "mobilend-bureau/1"
CENT = Decimal("0.01")
T = TypeVar("T")


class LenderType(StrEnum):
    BANK = "bank"
    CONSUMER_FINANCE = "consumer_finance"  # 消费金融公司
    MICROLOAN = "microloan"  # 小额贷款公司
    ONLINE_PLATFORM = "online_platform"  # 网络借贷平台


#: Lenders whose active loans count as 多头借贷 (borrowing from many non-bank platforms).
NON_BANK_LENDERS = frozenset(
    {LenderType.CONSUMER_FINANCE, LenderType.MICROLOAN, LenderType.ONLINE_PLATFORM}
)


class AccountStatus(StrEnum):
    CURRENT = "current"
    OVERDUE = "overdue"


class InquiryReason(StrEnum):
    LOAN_APPROVAL = "loan_approval"  # 贷款审批
    CREDIT_CARD = "credit_card"  # 信用卡审批
    POST_LOAN = "post_loan"  # 贷后管理


class BlacklistFlag(StrEnum):
    DISHONEST_DEBTOR = "dishonest_debtor"  # 失信被执行人
    CONSUMPTION_RESTRICTED = "consumption_restricted"  # 限制高消费
    FRAUD = "fraud"  # confirmed fraud
    INDUSTRY_BLACKLIST = "industry_blacklist"  # shared industry blacklist


@dataclass(frozen=True, slots=True)
class Account:
    lender_type: LenderType
    opened: date
    closed: date | None
    limit: Decimal  # credit line, or original principal of an installment loan
    balance: Decimal
    monthly_payment: Decimal
    status: AccountStatus
    worst_dpd_24m: int  # worst days past due in the 24 months to the report date

    def is_open(self, on: date) -> bool:
        return self.opened <= on and (self.closed is None or self.closed > on)


@dataclass(frozen=True, slots=True)
class Inquiry:
    date: date
    reason: InquiryReason


@dataclass(frozen=True, slots=True)
class CourtJudgment:
    date: date
    amount: Decimal
    satisfied: bool


@dataclass(frozen=True, slots=True)
class BureauReport:
    subject_hash: str
    report_date: date
    source: str
    currency: str
    accounts: tuple[Account, ...]
    inquiries: tuple[Inquiry, ...]
    court_judgments: tuple[CourtJudgment, ...]
    blacklist: frozenset[BlacklistFlag]

    def to_json(self) -> dict[str, object]:
        """The report in the `mobilend-bureau/1` format (amounts as decimal strings)."""
        return {
            "format": FORMAT,
            "subject": {"id_hash": self.subject_hash},
            "report_date": self.report_date.isoformat(),
            "source": self.source,
            "currency": self.currency,
            "accounts": [
                {
                    "lender_type": a.lender_type.value,
                    "opened": a.opened.isoformat(),
                    "closed": a.closed.isoformat() if a.closed else None,
                    "limit": str(a.limit),
                    "balance": str(a.balance),
                    "monthly_payment": str(a.monthly_payment),
                    "status": a.status.value,
                    "worst_dpd_24m": a.worst_dpd_24m,
                }
                for a in self.accounts
            ],
            "inquiries": [
                {"date": q.date.isoformat(), "reason": q.reason.value} for q in self.inquiries
            ],
            "public_records": [
                {
                    "type": "court_judgment",
                    "date": j.date.isoformat(),
                    "amount": str(j.amount),
                    "satisfied": j.satisfied,
                }
                for j in self.court_judgments
            ],
            "blacklist": sorted(flag.value for flag in self.blacklist),
        }


@dataclass(frozen=True, slots=True)
class NoReport:
    """The bureau holds no file on the subject (a thin file): a normal outcome."""

    subject_hash: str
    as_of: date
    source: str


BureauResult = BureauReport | NoReport


class BureauAdapter(Protocol):
    def fetch(self, subject_hash: str, *, as_of: date) -> BureauResult: ...


def check_subject_hash(subject_hash: str, *, field: str = "subject_hash") -> str:
    """A subject is named by 64 lowercase hex characters (a hash), never by personal data."""
    if not isinstance(subject_hash, str) or not HEX64.fullmatch(subject_hash):
        raise ValidationFailed(
            field, "hash", f"{field} must be a hash of 64 lowercase hex characters"
        )
    return subject_hash


def parse_bureau_report(data: object) -> BureauReport:
    """Validate a `mobilend-bureau/1` document; errors name the JSON path at fault."""
    doc = Obj(data)
    doc.expect_format(FORMAT)
    subject = doc.obj("subject")
    subject_hash = subject.text("id_hash", pattern=HEX64)
    subject.close()
    report_date = doc.day("report_date")
    source = doc.text("source", max_len=80)
    currency = doc.text("currency", max_len=3)
    accounts = tuple(_account(item, report_date) for item in doc.objects("accounts"))
    inquiries = []
    for item in doc.objects("inquiries"):
        when = _not_after(item, "date", report_date)
        inquiries.append(Inquiry(when, InquiryReason(item.choice("reason", InquiryReason))))
        item.close()
    judgments = []
    for item in doc.objects("public_records"):
        item.choice("type", ("court_judgment",))
        when = _not_after(item, "date", report_date)
        judgments.append(CourtJudgment(when, item.amount("amount"), item.boolean("satisfied")))
        item.close()
    flags = frozenset(
        BlacklistFlag(_flag(value, path)) for value, path in doc.items("blacklist", max_items=20)
    )
    doc.close()
    return BureauReport(
        subject_hash=subject_hash,
        report_date=report_date,
        source=source,
        currency=currency,
        accounts=accounts,
        inquiries=tuple(inquiries),
        court_judgments=tuple(judgments),
        blacklist=flags,
    )


def _account(item: Obj, report_date: date) -> Account:
    opened = _not_after(item, "opened", report_date)
    closed = _not_after(item, "closed", report_date) if item.optional("closed") else None
    if closed is not None and closed < opened:
        path = item.at("closed")
        raise ValidationFailed(path, "after-opened", f"{path} is before the opening date")
    account = Account(
        lender_type=LenderType(item.choice("lender_type", LenderType)),
        opened=opened,
        closed=closed,
        limit=item.amount("limit"),
        balance=item.amount("balance"),
        monthly_payment=item.amount("monthly_payment"),
        status=AccountStatus(item.choice("status", AccountStatus)),
        worst_dpd_24m=item.integer("worst_dpd_24m", maximum=3650),
    )
    item.close()
    if account.status is AccountStatus.OVERDUE and account.worst_dpd_24m == 0:
        path = item.at("worst_dpd_24m")
        raise ValidationFailed(path, "overdue-has-dpd", f"{path} must be >= 1 when overdue")
    if closed is not None and account.balance != 0:
        path = item.at("balance")
        raise ValidationFailed(path, "closed-zero-balance", f"{path} must be 0 once closed")
    return account


def _not_after(item: Obj, key: str, report_date: date) -> date:
    when = item.day(key)
    if when > report_date:
        path = item.at(key)
        raise ValidationFailed(path, "not-after-report", f"{path} is after the report date")
    return when


def _flag(value: object, path: str) -> str:
    allowed = [flag.value for flag in BlacklistFlag]
    if value not in allowed:
        raise ValidationFailed(path, "enum", f"{path} must be one of {', '.join(allowed)}")
    return str(value)


class FileBureau:
    """Reports stored as ``<directory>/<subject_hash>.json``; a missing file is a thin file."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.source = f"file:{self.directory.name}"

    def fetch(self, subject_hash: str, *, as_of: date) -> BureauResult:
        check_subject_hash(subject_hash)  # also keeps the file name inside the directory
        path = self.directory / f"{subject_hash}.json"
        if not path.is_file():
            return NoReport(subject_hash, as_of, self.source)
        report = parse_bureau_report(load_json(path))
        if report.subject_hash != subject_hash:
            raise ValidationFailed(
                "subject.id_hash", "matches-request", f"{path.name} is about another subject"
            )
        if report.report_date > as_of:
            raise ValidationFailed(
                "report_date", "not-after-as-of", f"{path.name} is dated after {as_of}"
            )
        return report


class SimulatedBureau:
    """SIMULATED reports: plausible figures drawn from the subject hash, for demos and tests.

    The same seed, subject hash and as-of date always give the same report; dates are placed
    relative to `as_of`. About `thin_file_rate` of subjects have no file (NoReport).
    """

    source = "simulated"

    def __init__(self, seed: int = 0, *, thin_file_rate: float = 0.1) -> None:
        self.seed = seed
        self.thin_file_rate = thin_file_rate

    def fetch(self, subject_hash: str, *, as_of: date) -> BureauResult:
        check_subject_hash(subject_hash)
        digest = hashlib.sha256(f"{self.seed}:{subject_hash}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:16], "big"))
        if rng.random() < self.thin_file_rate:
            return NoReport(subject_hash, as_of, self.source)
        return parse_bureau_report(_simulate(rng, subject_hash, as_of))


# Lender mix (weight) and the range of limits, in CNY, with the rounding step.
_LENDERS = (
    (LenderType.BANK, 0.35, 10_000, 100_000, 1_000),
    (LenderType.CONSUMER_FINANCE, 0.20, 3_000, 30_000, 500),
    (LenderType.ONLINE_PLATFORM, 0.30, 1_000, 50_000, 500),
    (LenderType.MICROLOAN, 0.15, 500, 10_000, 100),
)


def _pick(rng: random.Random, weighted: tuple[tuple[T, float], ...]) -> T:
    u = rng.random() * sum(weight for _, weight in weighted)
    for value, weight in weighted:
        u -= weight
        if u < 0:
            return value
    return weighted[-1][0]


def _money(value: float) -> str:
    return str(Decimal(value).quantize(CENT))


def _simulate(rng: random.Random, subject_hash: str, as_of: date) -> dict[str, object]:
    risk = rng.random() ** 3  # most subjects are low risk, a few are high
    accounts = []
    for _ in range(1 + int(rng.random() * 6)):
        lender, _w, low, high, step = _pick(rng, tuple((row, row[1]) for row in _LENDERS))
        limit = (low + int(rng.random() * (high - low) / step) * step) * 1.0
        opened = as_of - timedelta(days=30 + int(rng.random() * 2000))
        closed = None
        if rng.random() < 0.3 and (as_of - opened).days > 60:
            closed = opened + timedelta(days=30 + int(rng.random() * ((as_of - opened).days - 31)))
        overdue = closed is None and rng.random() < 0.01 + 0.25 * risk
        worst = 1 + int(rng.random() * 120) if overdue else 0
        if not overdue and rng.random() < 0.05 + 0.3 * risk:
            worst = 1 + int(rng.random() * 29)  # late once, since cured
        balance = 0.0 if closed else limit * rng.random()
        term_months = 6 + int(rng.random() * 31)
        accounts.append(
            {
                "lender_type": lender.value,
                "opened": opened.isoformat(),
                "closed": closed.isoformat() if closed else None,
                "limit": _money(limit),
                "balance": _money(balance),
                "monthly_payment": _money(balance * 1.1 / term_months),
                "status": "overdue" if overdue else "current",
                "worst_dpd_24m": worst,
            }
        )
    reason_weights = (("loan_approval", 0.6), ("credit_card", 0.2), ("post_loan", 0.2))
    inquiries = [
        {
            "date": (as_of - timedelta(days=int(rng.random() * 180))).isoformat(),
            "reason": _pick(rng, reason_weights),
        }
        for _ in range(int((0.3 + risk) * rng.random() * 10))
    ]
    records = []
    if rng.random() < 0.02 + 0.1 * risk:
        records.append(
            {
                "type": "court_judgment",
                "date": (as_of - timedelta(days=100 + int(rng.random() * 1400))).isoformat(),
                "amount": _money(1_000 + rng.random() * 49_000),
                "satisfied": rng.random() < 0.5,
            }
        )
    blacklist = []
    if rng.random() < 0.005 + 0.05 * risk:
        blacklist.append(BlacklistFlag.DISHONEST_DEBTOR.value)
    return {
        "format": FORMAT,
        "subject": {"id_hash": subject_hash},
        "report_date": as_of.isoformat(),
        "source": SimulatedBureau.source,
        "currency": "CNY",
        "accounts": accounts,
        "inquiries": sorted(inquiries, key=lambda q: q["date"]),
        "public_records": records,
        "blacklist": blacklist,
    }
