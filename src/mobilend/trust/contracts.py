"""E-contract use cases: draft, send a signing code, sign, verify, serve the documents.

1. `create_contract` renders the loan agreement and key-facts statement of a booked
   (approved) loan in zh-CN or en (`contract_pdf`) and stores the draft PDF content-addressed.
   A new draft supersedes the loan's earlier drafts; a loan has at most one signed contract.
2. `send_signing_code` makes a 6-digit one-time code, keeps only a salted SHA-256 of it, and
   puts the SMS in the outbox (template "contract.signing_code") in the same transaction. The
   code is returned to the Python caller only; the API never shows it.
3. `sign_contract` checks the code (expiry CODE_TTL, at most MAX_ATTEMPTS tries), records the
   borrower's intent (consent text version, time, device), then the lender signs the draft
   with PAdES and a timestamp (`pades`), stores the signed PDF content-addressed and records a
   "contract_signed" leaf in the transparency log (ids and the PDF's SHA-256 only). A wrong,
   expired or exhausted code is returned as `Refused`, not raised, so that the caller commits
   the attempt before answering with the error.
4. `verify_contract` re-validates the signature with pyHanko against the trust roots and
   checks that the stored file still hashes to the recorded and logged SHA-256.

Files: data_dir/contracts/<sha256>.pdf, written atomically (temporary file, fsync, rename),
mode 0600 (they name the borrower). A file written in a transaction that then rolls back is
left behind unreferenced; it is harmless and names nothing the database knows.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.core.errors import Conflict, MobilendError, NotFound, ValidationFailed
from mobilend.loans.models import Loan
from mobilend.trust import contract_pdf, log, pades, signing
from mobilend.trust.contract_models import Contract, SigningCode
from mobilend.trust.contract_pdf import CollateralFacts, ContractFacts, ScheduleRow
from mobilend.trust.contract_texts import (
    CONSENT_TEXTS,
    CONSENT_VERSION,
    LANGUAGES,
    TEMPLATE_VERSION,
)
from mobilend.trust.models import LogEntry, PendingEntry
from mobilend.trust.pades import PadesConfig, SignatureCheck

if TYPE_CHECKING:
    from mobilend.origination.pii import PiiCipher
    from mobilend.origination.service import BorrowerRecord
    from mobilend.settings import Settings

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=60)  # one SMS a minute per contract at most
# Shown in every contract (docs/e-contracts.md); candidates for Settings.
COOLING_OFF_DAYS = 7
COMPLAINT_EMAIL = "complaints@mobilend.example"
COMPLAINT_HOTLINE = "12378"  # the financial consumer complaint hotline (NFRA)
COMPLAINT_REPLY_DAYS = 15
FONT_ENV = "MOBILEND_CJK_FONT"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
STORE_DIR = "contracts"
_BORROWER_REF = re.compile(r"borrower:(\d+)(?:/|$)")


@dataclass(frozen=True)
class ContractConfig:
    """What contracts need beyond the database: files, the lender's details, the signer."""

    data_dir: Path
    lender_name: str = "Mobilend"
    support_phone: str = "400-000-0000"
    complaint_email: str = COMPLAINT_EMAIL
    complaint_hotline: str = COMPLAINT_HOTLINE
    cooling_off_days: int = COOLING_OFF_DAYS
    font_path: Path | None = None  # None: MOBILEND_CJK_FONT, then WenQuanYi from Debian
    pades: PadesConfig = field(default_factory=PadesConfig)

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> ContractConfig:
        env = os.environ if environ is None else environ
        font = env.get(FONT_ENV, "").strip()
        return cls(
            data_dir=Path(settings.data_dir),
            lender_name=settings.lender_name,
            support_phone=settings.support_phone,
            font_path=Path(font) if font else None,
            pades=pades.config_from_env(env),
        )


def find_cjk_font(explicit: Path | None = None) -> Path:
    """A TrueType font with Chinese glyphs: the given path, MOBILEND_CJK_FONT, WenQuanYi Micro
    Hei (Debian fonts-wqy-microhei, installed by scripts/system-deps.sh), or fontconfig's."""
    env = os.environ.get(FONT_ENV, "").strip()
    for candidate in (explicit, Path(env) if env else None, *FONT_CANDIDATES):
        if candidate is not None and candidate.is_file():
            return candidate
    if shutil.which("fc-list"):  # TrueType outlines only: ReportLab cannot embed CFF (.otf)
        found = subprocess.run(
            ["fc-list", ":lang=zh-cn:fontformat=TrueType", "file"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in sorted(found.splitlines()):
            path = Path(line.split(":")[0].strip())
            if path.suffix.lower() in (".ttf", ".ttc") and path.is_file():
                return path
    raise Conflict(
        "no Chinese TrueType font for contracts: run scripts/system-deps.sh "
        f"(fonts-wqy-microhei) or set {FONT_ENV}",
        field="font",
        rule="font-missing",
    )


# -- content-addressed storage -----------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_pdf(data_dir: Path, data: bytes) -> str:
    """Write data_dir/contracts/<sha256>.pdf atomically (once); return the hash."""
    digest = sha256_hex(data)
    directory = Path(data_dir) / STORE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{digest}.pdf"
    if path.exists() and sha256_hex(path.read_bytes()) == digest:
        return digest
    tmp = directory / f".{digest}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def pdf_path(data_dir: Path, digest: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValidationFailed("sha256", "hex", "a document hash is 64 lowercase hex characters")
    return Path(data_dir) / STORE_DIR / f"{digest}.pdf"


def read_pdf(data_dir: Path, digest: str) -> bytes | None:
    try:
        return pdf_path(data_dir, digest).read_bytes()
    except FileNotFoundError:
        return None


# -- look-ups ----------------------------------------------------------------------------


def get_contract(session: Session, contract_id: int, *, lock: bool = False) -> Contract:
    stmt = select(Contract).where(Contract.id == contract_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    contract = session.scalar(stmt)
    if contract is None:
        raise NotFound(f"contract {contract_id} not found", field="contract_id")
    return contract


def contract_no(contract: Contract) -> str:
    return f"MLC-{contract.id:08d}"


def borrower_of(session: Session, loan: Loan) -> int:
    """The loan's borrower: the application it was booked from, else borrower_ref."""
    from mobilend.decisioning.models import Application

    found = session.scalar(
        select(Application.borrower_id).where(Application.loan_id == loan.id).limit(1)
    )
    if found is not None:
        return int(found)
    match = _BORROWER_REF.match(loan.borrower_ref or "")
    if match:
        return int(match.group(1))
    raise Conflict(
        f"loan {loan.id} names no borrower to sign its contract",
        field="loan_id",
        rule="no-borrower",
    )


# -- facts -------------------------------------------------------------------------------


def _collateral(session: Session, loan: Loan) -> list[tuple[int, CollateralFacts]]:
    from mobilend.collateral.agent import LOCKED_ALLOWLIST
    from mobilend.collateral.models import Pledge
    from mobilend.collateral.service import get_model, terms_for

    pledges = session.scalars(
        select(Pledge)
        .where(Pledge.loan_id == loan.id, Pledge.status == "active")
        .order_by(Pledge.id)
    ).all()
    if not pledges:
        return []
    terms = terms_for(session, loan.product_id)
    policy = terms.lock_policy
    out = []
    for pledge in pledges:
        model = get_model(session, pledge.model_key)
        facts = CollateralFacts(
            device=f"{model.brand} {model.model}",
            storage_gb=pledge.storage_gb,
            imei=pledge.imei,
            grade=pledge.grade,
            custody_mode=pledge.custody_mode,
            location=pledge.location,
            value=Decimal(pledge.booking_value),
            lending_value=Decimal(pledge.lending_value),
            max_ltv=terms.max_ltv,
            warning_ltv=terms.warning_ltv,
            margin_call_ltv=terms.margin_call_ltv,
            liquidation_ltv=terms.liquidation_ltv,
            margin_call_days=terms.margin_call_days,
            lock_after_grace_days=policy.lock_after_grace_days,
            offline_lock_days=policy.offline_lock_days,
            reminder_days_before=tuple(policy.reminder_days_before),
            usable_while_locked=tuple(LOCKED_ALLOWLIST),
        )
        out.append((pledge.id, facts))
    return out


def build_facts(
    session: Session,
    loan: Loan,
    *,
    language: str,
    number: str,
    issued_on: date,
    borrower: BorrowerRecord,
    config: ContractConfig,
) -> tuple[ContractFacts, dict[str, Any]]:
    """What the document shows, and the key facts as JSON (figures and ids only)."""
    from mobilend.loans.quoting import quote
    from mobilend.loans.service import servicing_of, terms_of
    from mobilend.origination.pii import mask_id_number, mask_phone

    terms = terms_of(loan)
    q = quote(terms)
    s = q.schedule
    servicing = servicing_of(loan)
    pledged = _collateral(session, loan)
    financed_fee = terms.upfront_fee_treatment.value == "financed"
    rows = tuple(
        ScheduleRow(i.number, i.due_date, i.principal, i.interest, i.fee, i.total, i.balance)
        for i in s.installments
    )
    facts = ContractFacts(
        language=language,
        contract_no=number,
        loan_id=loan.id,
        issued_on=issued_on,
        template_version=TEMPLATE_VERSION,
        consent_version=CONSENT_VERSION,
        lender_name=config.lender_name,
        support_phone=config.support_phone,
        complaint_email=config.complaint_email,
        complaint_hotline=config.complaint_hotline,
        complaint_reply_days=COMPLAINT_REPLY_DAYS,
        cooling_off_days=config.cooling_off_days,
        borrower_name=borrower.name,
        borrower_id_number=mask_id_number(borrower.id_number),
        borrower_phone=mask_phone(borrower.phone),
        currency=loan.currency,
        principal=s.financed_principal - (s.upfront_fee if financed_fee else 0),
        disbursed_amount=s.disbursed_amount,
        start_date=terms.start,
        nominal_rate_pct=terms.annual_rate * 100,
        irr_simple_pct=q.apr.simple_pct,
        irr_compound_pct=q.apr.compound_pct,
        total_interest=s.total_interest,
        total_fees=s.total_fees,
        total_payment=s.total_payment,
        schedule_type=terms.schedule.value,
        frequency_unit=terms.frequency.unit.value,
        frequency_count=terms.frequency.count,
        upfront_fee=s.upfront_fee,
        upfront_fee_treatment=terms.upfront_fee_treatment.value,
        installment_fee=terms.installment_fee,
        late_fee=Decimal(str(servicing["late_fee"])),
        late_fee_grace_days=int(str(servicing["late_fee_grace_days"])),
        penalty_rate_pct=Decimal(str(servicing["penalty_rate_pct"])),
        waterfall=tuple(str(servicing["waterfall"]).split(",")),
        schedule=rows,
        collateral=tuple(c for _, c in pledged),
    )
    return facts, _key_facts_json(facts, [pid for pid, _ in pledged])


def _key_facts_json(f: ContractFacts, pledge_ids: list[int]) -> dict[str, Any]:
    pct = contract_pdf.percent
    return {
        "currency": f.currency,
        "principal": str(f.principal),
        "disbursed_amount": str(f.disbursed_amount),
        "nominal_rate_pct": pct(f.nominal_rate_pct),
        "apr": {
            "irr_simple_pct": str(f.irr_simple_pct),
            "irr_compound_pct": str(f.irr_compound_pct),
        },
        "total_interest": str(f.total_interest),
        "total_fees": str(f.total_fees),
        "total_cost": str(f.total_cost),
        "total_payment": str(f.total_payment),
        "upfront_fee": str(f.upfront_fee),
        "upfront_fee_treatment": f.upfront_fee_treatment,
        "installment_fee": str(f.installment_fee),
        "late_fee": str(f.late_fee),
        "late_fee_grace_days": f.late_fee_grace_days,
        "penalty_rate_pct": pct(f.penalty_rate_pct),
        "schedule_type": f.schedule_type,
        "start_date": f.start_date.isoformat(),
        "installments": [
            {
                "number": r.number,
                "due_date": r.due_date.isoformat(),
                "principal": str(r.principal),
                "interest": str(r.interest),
                "fee": str(r.fee),
                "total": str(r.total),
                "balance": str(r.balance),
            }
            for r in f.schedule
        ],
        "collateral": [
            {
                "pledge_id": pid,
                "custody_mode": c.custody_mode,
                "value": str(c.value),
                "lending_value": str(c.lending_value),
                "max_ltv": str(c.max_ltv),
                "warning_ltv": str(c.warning_ltv),
                "margin_call_ltv": str(c.margin_call_ltv),
                "liquidation_ltv": str(c.liquidation_ltv),
                "margin_call_days": c.margin_call_days,
                "lock_after_grace_days": c.lock_after_grace_days
                if c.custody_mode == "device_lock"
                else None,
            }
            for pid, c in zip(pledge_ids, f.collateral, strict=True)
        ],
        "cooling_off_days": f.cooling_off_days,
        "consent_version": f.consent_version,
        "template_version": f.template_version,
    }


# -- 1. draft ----------------------------------------------------------------------------


def create_contract(
    session: Session,
    *,
    loan_id: int,
    language: str,
    now: datetime,
    today: date,
    config: ContractConfig,
    cipher: PiiCipher,
    actor: str = "system",
) -> Contract:
    """Render the draft of an approved loan's contract; earlier drafts are superseded."""
    from mobilend.loans.service import lock_loan
    from mobilend.origination.service import get_borrower

    if language not in LANGUAGES:
        raise ValidationFailed("language", "one-of", f"language must be one of {LANGUAGES}")
    font = find_cjk_font(config.font_path)
    loan = lock_loan(session, loan_id)  # one draft at a time per loan
    if loan.status != "approved":
        raise Conflict(
            f"loan {loan_id} is {loan.status}; contracts are drawn up for approved loans",
            field="loan_id",
            rule="loan-not-approved",
        )
    existing = session.scalars(
        select(Contract).where(Contract.loan_id == loan_id, Contract.status != "superseded")
    ).all()
    if any(c.status == "signed" for c in existing):
        raise Conflict(
            f"loan {loan_id} already has a signed contract", field="loan_id", rule="already-signed"
        )
    borrower_id = borrower_of(session, loan)
    borrower = get_borrower(session, borrower_id, cipher=cipher)
    for old in existing:
        old.status = "superseded"
        _close_codes(session, old.id, "superseded")
    contract = Contract(
        loan_id=loan.id,
        borrower_id=borrower_id,
        language=language,
        status="draft",
        template_version=TEMPLATE_VERSION,
        key_facts={},
        draft_sha256="0" * 64,
        created_at=now,
        created_by=actor,
    )
    session.add(contract)
    session.flush()
    facts, key_facts = build_facts(
        session,
        loan,
        language=language,
        number=contract_no(contract),
        issued_on=today,
        borrower=borrower,
        config=config,
    )
    pdf = contract_pdf.render(facts, font_path=font)
    contract.draft_sha256 = store_pdf(config.data_dir, pdf)
    contract.key_facts = key_facts
    session.flush()
    return contract


# -- 2. signing code ---------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class IssuedCode:
    contract_id: int
    code_id: int
    code: str  # for the Python caller (tests, a gateway in-process); never sent over the API
    expires_at: datetime
    sent_to: str  # the masked phone

    def __repr__(self) -> str:
        return f"IssuedCode(contract_id={self.contract_id}, code_id={self.code_id})"


def _hash_code(salt: str, code: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + code.encode("ascii")).hexdigest()


def _close_codes(session: Session, contract_id: int, status: str) -> None:
    for row in session.scalars(
        select(SigningCode).where(
            SigningCode.contract_id == contract_id, SigningCode.status == "pending"
        )
    ):
        row.status = status


def _latest_code(session: Session, contract_id: int) -> SigningCode | None:
    return session.scalar(
        select(SigningCode)
        .where(SigningCode.contract_id == contract_id)
        .order_by(SigningCode.id.desc())
        .limit(1)
    )


def _require_draft(contract: Contract) -> None:
    if contract.status != "draft":
        raise Conflict(
            f"contract {contract.id} is {contract.status}",
            field="contract_id",
            rule=f"contract-{contract.status}",
        )


def _require_current(session: Session, contract: Contract) -> None:
    """The draft still describes the loan: not disbursed, same schedule, same pledges."""
    from mobilend.collateral.models import Pledge

    loan = session.get(Loan, contract.loan_id)
    if loan is None or loan.status != "approved":
        status = "gone" if loan is None else loan.status
        raise Conflict(
            f"loan {contract.loan_id} is {status}; contracts are signed before disbursement",
            field="loan_id",
            rule="loan-not-approved",
        )
    kf = contract.key_facts
    drafted = [(i["number"], i["due_date"], i["total"]) for i in kf.get("installments", [])]
    booked = [
        (i.number, i.due_date.isoformat(), str(i.principal + i.interest + i.fee))
        for i in loan.installments
        if not i.cancelled
    ]
    pledged = session.scalars(
        select(Pledge.id).where(Pledge.loan_id == loan.id, Pledge.status == "active")
    ).all()
    drafted_pledges = [c["pledge_id"] for c in kf.get("collateral", [])]
    if drafted != booked or sorted(pledged) != sorted(drafted_pledges):
        raise Conflict(
            f"loan {loan.id} changed since contract {contract.id} was drawn up: draw up a new one",
            field="contract_id",
            rule="draft-stale",
        )


def send_signing_code(
    session: Session,
    *,
    contract_id: int,
    now: datetime,
    today: date,
    config: ContractConfig,
    cipher: PiiCipher,
) -> IssuedCode:
    """A new one-time code by SMS (the outbox); any earlier pending code stops working."""
    from mobilend.notify.outbox import enqueue
    from mobilend.origination.pii import mask_phone
    from mobilend.origination.service import get_borrower

    contract = get_contract(session, contract_id, lock=True)
    _require_draft(contract)
    _require_current(session, contract)
    last = _latest_code(session, contract.id)
    if last is not None and now < last.created_at + RESEND_AFTER:
        wait = int((last.created_at + RESEND_AFTER - now).total_seconds()) + 1
        raise Conflict(
            f"a code was sent less than {int(RESEND_AFTER.total_seconds())} s ago; "
            f"retry in {wait} s",
            field="contract_id",
            rule="code-recently-sent",
        )
    borrower = get_borrower(session, contract.borrower_id, cipher=cipher)
    _close_codes(session, contract.id, "superseded")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    row = SigningCode(
        contract_id=contract.id,
        salt=salt,
        code_hash=_hash_code(salt, code),
        created_at=now,
        expires_at=now + CODE_TTL,
        attempts=0,
        status="pending",
    )
    session.add(row)
    session.flush()
    enqueue(
        session,
        topic="contract.signing_code",
        loan_id=contract.loan_id,
        params={
            "lender": config.lender_name,
            "contract_no": contract_no(contract),
            "amount": contract.key_facts.get("principal", ""),
            "code": code,
            "minutes": int(CODE_TTL.total_seconds() // 60),
        },
        business_date=today,
        now=now,
        dedupe_key=f"contract-code:{row.id}",
        language=contract.language,
    )
    session.flush()
    return IssuedCode(contract.id, row.id, code, row.expires_at, mask_phone(borrower.phone))


# -- 3. signature ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The code was not accepted; commit (the attempt counts), then raise `error`."""

    error: MobilendError


@dataclass(frozen=True)
class Signed:
    contract: Contract
    leaf_hash: bytes


def _check_code(row: SigningCode | None, code: str, now: datetime) -> MobilendError | None:
    """None when `code` is right; otherwise the error (the row's state updated)."""
    if row is None or row.status != "pending":
        return Conflict(
            "no signing code is pending: request one", field="code", rule="no-pending-code"
        )
    if now >= row.expires_at:
        row.status = "expired"
        return Conflict("the signing code has expired: request a new one", field="code",
                        rule="code-expired")  # fmt: skip
    if row.attempts >= MAX_ATTEMPTS:
        return Conflict(
            f"{MAX_ATTEMPTS} wrong codes were entered: request a new one",
            field="code",
            rule="too-many-attempts",
        )
    row.attempts += 1
    given = _hash_code(row.salt, code) if re.fullmatch(r"\d{1,12}", code) else ""
    if not hmac.compare_digest(given, row.code_hash):
        left = MAX_ATTEMPTS - row.attempts
        return ValidationFailed("code", "match", f"the code is wrong; {left} attempts left")
    return None


def sign_contract(
    session: Session,
    *,
    contract_id: int,
    code: str,
    consent_version: str,
    device: Mapping[str, str | None],
    now: datetime,
    config: ContractConfig,
) -> Signed | Refused:
    """Accept the borrower's code and consent, then apply the lender's PAdES signature."""
    contract = get_contract(session, contract_id, lock=True)
    _require_draft(contract)
    if consent_version != CONSENT_VERSION:
        known = consent_version in CONSENT_TEXTS
        raise ValidationFailed(
            "consent_version",
            "current" if known else "known",
            f"the borrower must consent to the current text {CONSENT_VERSION!r}",
        )
    _require_current(session, contract)
    row = session.scalar(
        select(SigningCode)
        .where(SigningCode.contract_id == contract.id, SigningCode.status == "pending")
        .order_by(SigningCode.id.desc())
        .limit(1)
    )
    error = _check_code(row, code, now)
    if error is not None:
        session.flush()
        return Refused(error)
    assert row is not None
    draft = read_pdf(config.data_dir, contract.draft_sha256)
    if draft is None or sha256_hex(draft) != contract.draft_sha256:
        raise Conflict(
            f"the stored draft of contract {contract.id} is missing or altered",
            field="document",
            rule="draft-mismatch",
        )
    row.status = "used"
    row.used_at = now
    signer = pades.signer_for(config.pades, config.data_dir, now=now)
    stamper = pades.timestamper_for(config.pades, config.data_dir, now=now)
    reason = (
        f"Borrower consent {consent_version} by one-time code at "
        f"{signing.format_at(now)}; contract {contract_no(contract)}"
    )
    signed = pades.sign(
        draft, signer=signer, timestamper=stamper, reason=reason, location=config.lender_name
    )
    digest = store_pdf(config.data_dir, signed)
    contract.status = "signed"
    contract.signed_at = now
    contract.consent_version = consent_version
    contract.signer_device = {k: (v[:300] if v else None) for k, v in device.items()}
    contract.signed_sha256 = digest
    certificate = signer.signing_cert
    assert certificate is not None  # a loaded SimpleSigner always has one
    contract.signer_certificate = hashlib.sha256(certificate.dump()).hexdigest()
    leaf = log.record(
        session,
        kind="contract_signed",
        refs={"contract_id": contract.id, "loan_id": contract.loan_id},
        digest=digest,
        at=now,
    )
    contract.log_leaf_hash = leaf.leaf_hash
    session.flush()
    return Signed(contract, leaf.leaf_hash)


# -- 4. verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogCheck:
    status: Literal["appended", "pending", "missing"]
    leaf_index: int | None = None
    digest: str | None = None
    refs_match: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "leaf_index": self.leaf_index,
            "digest": self.digest,
            "refs_match": self.refs_match,
        }


@dataclass(frozen=True)
class Verification:
    contract_id: int
    signature: SignatureCheck
    recorded_sha256: str
    file_sha256: str | None  # None: the file is missing
    draft_matches: bool  # the signed file begins with the exact draft
    log: LogCheck

    @property
    def hash_matches(self) -> bool:
        return self.file_sha256 == self.recorded_sha256

    @property
    def logged(self) -> bool:
        return (
            self.log.status != "missing"
            and self.log.refs_match
            and self.log.digest == self.recorded_sha256
        )

    @property
    def ok(self) -> bool:
        return self.signature.ok and self.hash_matches and self.logged and self.draft_matches

    def to_json(self) -> dict[str, Any]:
        return {
            "contract_id": self.contract_id,
            "ok": self.ok,
            "intact": self.signature.intact,
            "valid": self.signature.valid,
            "trusted": self.signature.trusted,
            "bottom_line": self.signature.bottom_line,
            "hash_matches": self.hash_matches,
            "logged": self.logged,
            "draft_matches": self.draft_matches,
            "signature": self.signature.to_json(),
            "document": {"recorded_sha256": self.recorded_sha256, "file_sha256": self.file_sha256},
            "log": self.log.to_json(),
        }


def _log_check(session: Session, contract: Contract) -> LogCheck:
    leaf_hash = contract.log_leaf_hash
    if leaf_hash is None:
        return LogCheck("missing")
    entry = session.scalar(select(LogEntry).where(LogEntry.leaf_hash == leaf_hash).limit(1))
    if entry is not None:
        status: Literal["appended", "pending"] = "appended"
        text, index = entry.leaf_input, entry.leaf_index
    else:
        pending = session.scalar(
            select(PendingEntry).where(PendingEntry.leaf_hash == leaf_hash).limit(1)
        )
        if pending is None:
            return LogCheck("missing")
        status, text, index = "pending", pending.leaf_input, None
    leaf = signing.parse_leaf(text.encode("utf-8"))
    refs_match = leaf.kind == "contract_signed" and leaf.refs == {
        "contract_id": contract.id,
        "loan_id": contract.loan_id,
    }
    return LogCheck(status, index, leaf.digest, refs_match)


def verify_contract(
    session: Session, *, contract_id: int, config: ContractConfig, now: datetime | None = None
) -> Verification:
    """The signature (pyHanko, against the trust roots), the stored file and the log leaf."""
    contract = get_contract(session, contract_id)
    if contract.status != "signed" or contract.signed_sha256 is None:
        raise Conflict(
            f"contract {contract_id} is {contract.status}, not signed",
            field="contract_id",
            rule="not-signed",
        )
    data = read_pdf(config.data_dir, contract.signed_sha256)
    roots = pades.trust_roots(config.pades, config.data_dir)
    if data is None:
        check = pades.SignatureCheck(
            False, False, False, False, False, False, False, problem="the signed file is missing"
        )
        file_sha, draft_ok = None, False
    else:
        check = pades.validate(data, roots=roots, moment=now)
        file_sha = sha256_hex(data)
        draft = read_pdf(config.data_dir, contract.draft_sha256)
        draft_ok = (
            draft is not None
            and data.startswith(draft)
            and (sha256_hex(draft) == contract.draft_sha256)
        )
    return Verification(
        contract.id,
        check,
        contract.signed_sha256,
        file_sha,
        draft_ok,
        _log_check(session, contract),
    )


# -- documents ---------------------------------------------------------------------------


def document(
    session: Session, *, contract_id: int, kind: str, config: ContractConfig
) -> tuple[Contract, bytes]:
    """The draft or signed PDF, refused if the stored file no longer has its hash."""
    contract = get_contract(session, contract_id)
    if kind not in ("draft", "signed"):
        raise ValidationFailed("kind", "one-of", "kind is draft or signed")
    digest = contract.draft_sha256 if kind == "draft" else contract.signed_sha256
    if digest is None:
        raise Conflict(f"contract {contract_id} is not signed", field="kind", rule="not-signed")
    data = read_pdf(config.data_dir, digest)
    if data is None or sha256_hex(data) != digest:
        raise Conflict(
            f"the stored {kind} document of contract {contract_id} is missing or altered",
            field="document",
            rule="hash-mismatch",
        )
    return contract, data


def contract_json(contract: Contract) -> dict[str, Any]:
    return {
        "id": contract.id,
        "contract_no": contract_no(contract),
        "loan_id": contract.loan_id,
        "language": contract.language,
        "status": contract.status,
        "template_version": contract.template_version,
        "draft_sha256": contract.draft_sha256,
        "signed_sha256": contract.signed_sha256,
        "consent_version": contract.consent_version,
        "created_at": signing.format_at(contract.created_at, field="created_at"),
        "signed_at": signing.format_at(contract.signed_at) if contract.signed_at else None,
        "log_leaf_hash": signing.b64(contract.log_leaf_hash) if contract.log_leaf_hash else None,
        "key_facts": contract.key_facts,
    }
