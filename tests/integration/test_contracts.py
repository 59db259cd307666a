"""E-contracts on SQLite and PostgreSQL: draft, signing code, PAdES signature, log, verify.

The key facts are checked against the hand calculation of tests/integration/
test_loan_lifecycle.py (1200 at 12% a year, 3 monthly installments) and pyxirr; signatures
are judged by pyHanko's validator (tests/unit/test_contract_pdf.pyhanko_status).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pyxirr
from sqlalchemy import select

from mobilend.collateral import catalog, grading, pledges, prices
from mobilend.collateral import service as collateral
from mobilend.core.errors import Conflict, NotFound, ValidationFailed
from mobilend.loans import service as loans
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.notify.models import OutboxMessage
from mobilend.notify.templates import render
from mobilend.trust import contracts, log, signing
from mobilend.trust.contract_models import Contract, SigningCode
from mobilend.trust.contract_texts import CONSENT_VERSION
from mobilend.trust.contracts import ContractConfig
from mobilend.trust.models import LogEntry, PendingEntry
from tests.integration.helpers import Db
from tests.integration.test_borrowers import CIPHER, person, register
from tests.unit.test_contract_pdf import cjk_font, pdf_text, pyhanko_status

pytestmark = pytest.mark.integration
D = Decimal
NOW = datetime(2025, 1, 15, 4, tzinfo=UTC)
TODAY = date(2025, 1, 15)
DEVICE = {"device_id": "phone-1", "user_agent": "MobilendApp/1.0", "ip": "192.0.2.1"}


class Env:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.db = Db(url)
        self.config = ContractConfig(data_dir=data_dir, font_path=cjk_font())
        self.name = "李四"
        self.person = person(name=self.name)
        self.borrower_id = register(self.db, self.person)

    def loan(self, *, with_borrower: bool = True, **config: Any) -> int:
        code = f"C{uuid.uuid4().hex[:10]}"
        cfg = ProductConfig(
            penalty_rate_pct=D("18"), late_fee=D("20"), late_fee_grace_days=3, **config
        )
        self.db(lambda s: loans.create_product(s, ProductIn(code=code, name="x", config=cfg)))
        ref = f"borrower:{self.borrower_id}" if with_borrower else ""
        body = LoanIn(
            product_code=code,
            principal=D("1200"),
            periods=3,
            start_date=TODAY,
            borrower_ref=ref,
        )
        return int(self.db(lambda s: loans.create_loan(s, body)).id)

    def draft(self, loan_id: int, language: str = "zh-CN") -> Contract:
        return self.db(
            lambda s: contracts.create_contract(
                s,
                loan_id=loan_id,
                language=language,
                now=NOW,
                today=TODAY,
                config=self.config,
                cipher=CIPHER,
            )
        )

    def code(self, contract_id: int, now: datetime = NOW) -> contracts.IssuedCode:
        return self.db(
            lambda s: contracts.send_signing_code(
                s, contract_id=contract_id, now=now, today=TODAY, config=self.config, cipher=CIPHER
            )
        )

    def sign(
        self, contract_id: int, code: str, now: datetime = NOW
    ) -> contracts.Signed | contracts.Refused:
        return self.db(
            lambda s: contracts.sign_contract(
                s,
                contract_id=contract_id,
                code=code,
                consent_version=CONSENT_VERSION,
                device=DEVICE,
                now=now,
                config=self.config,
            )
        )

    def verify(self, contract_id: int) -> contracts.Verification:
        return self.db(
            lambda s: contracts.verify_contract(s, contract_id=contract_id, config=self.config)
        )

    def signed(self, **config: Any) -> Contract:
        contract = self.draft(self.loan(**config))
        outcome = self.sign(contract.id, self.code(contract.id).code)
        assert isinstance(outcome, contracts.Signed)
        return outcome.contract


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Env:
    return Env(db_url, tmp_path / "data")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_key_facts_have_the_hand_calculated_figures(env: Env) -> None:
    contract = env.draft(env.loan())
    kf = contract.key_facts
    # Hand calculation (test_loan_lifecycle.py): level installment 1200 x 0.01 /
    # (1 - 1.01^-3) = 408.0265 -> 408.03; interest 12.00, 8.04, 4.04 (last installment
    # 408.02); total interest 24.08; no fees; total to repay 1224.08.
    assert [(i["principal"], i["interest"], i["total"]) for i in kf["installments"]] == [
        ("396.03", "12.00", "408.03"),
        ("399.99", "8.04", "408.03"),
        ("403.98", "4.04", "408.02"),
    ]
    assert [i["due_date"] for i in kf["installments"]] == ["2025-02-15", "2025-03-15", "2025-04-15"]
    assert (kf["principal"], kf["disbursed_amount"]) == ("1200.00", "1200.00")
    assert (kf["total_interest"], kf["total_fees"], kf["total_cost"]) == ("24.08", "0.00", "24.08")
    assert kf["total_payment"] == "1224.08"
    assert (kf["penalty_rate_pct"], kf["late_fee"], kf["late_fee_grace_days"]) == ("18", "20", 3)
    # r solves 1200 = 408.03 v + 408.03 v^2 + 408.02 v^3: r = 1.000020614 % a month, so
    # simple 12 r = 12.0002 % and compound (1 + r)^12 - 1 = 12.6828 % (4 decimals).
    assert kf["apr"] == {"irr_simple_pct": "12.0002", "irr_compound_pct": "12.6828"}
    r = pyxirr.irr([-1200, 408.03, 408.03, 408.02])
    assert abs(D(kf["apr"]["irr_simple_pct"]) - D(repr(r * 1200))) < D("0.0001")
    assert abs(D(kf["apr"]["irr_compound_pct"]) - D(repr(((1 + r) ** 12 - 1) * 100))) < D("0.0001")
    assert kf["collateral"] == []
    assert env.name not in json.dumps(kf, ensure_ascii=False)  # no personal data in the row

    draft = contracts.read_pdf(env.config.data_dir, contract.draft_sha256)
    assert draft is not None and contracts.sha256_hex(draft) == contract.draft_sha256
    text = pdf_text(draft).replace("\n", "")
    for figure in ("1,200.00", "408.03", "408.02", "12.0002%", "12.6828%", "1,224.08", "24.08"):
        assert figure in text, figure
    assert "年化利率（IRR，复利）" in text and "无（信用借款）" in text and env.name in text


def test_a_new_draft_supersedes_and_english_text(env: Env) -> None:
    loan_id = env.loan(upfront_fee=D("6"))
    first = env.draft(loan_id)
    second = env.draft(loan_id, "en")
    assert env.db(lambda s: s.get(Contract, first.id)).status == "superseded"
    kf = second.key_facts
    # A 6.00 fee deducted: 1194.00 received; fees 6.00; cost 24.08 + 6.00 = 30.08.
    assert (kf["disbursed_amount"], kf["total_fees"], kf["total_cost"]) == (
        "1194.00",
        "6.00",
        "30.08",
    )
    r = pyxirr.irr([-1194, 408.03, 408.03, 408.02])  # about 1.25 % a month
    assert abs(D(kf["apr"]["irr_simple_pct"]) - D(repr(r * 1200))) < D("0.0001")
    draft = contracts.read_pdf(env.config.data_dir, second.draft_sha256)
    assert draft is not None
    text = pdf_text(draft).replace("\n", " ")
    for term in ("Annualized rate by IRR (compound)", "1,194.00", "Upfront fee 6.00", "30.08"):
        assert term in text, term


def test_sign_with_code_then_verify_and_log(env: Env) -> None:
    contract = env.draft(env.loan())
    issued = env.code(contract.id)
    assert issued.sent_to.startswith(env.person.phone[:3]) and "****" in issued.sent_to
    assert issued.expires_at == NOW + timedelta(minutes=10)
    # The SMS waits in the outbox; only a salted hash of the code is stored.
    message = env.db(
        lambda s: s.scalar(
            select(OutboxMessage).where(
                OutboxMessage.dedupe_key == f"contract-code:{issued.code_id}"
            )
        )
    )
    assert (message.topic, message.params["code"], message.language) == (
        "contract.signing_code",
        issued.code,
        "zh-CN",
    )
    assert issued.code in render(message.topic, "zh-CN", message.params)
    row = env.db(lambda s: s.get(SigningCode, issued.code_id))
    assert issued.code not in (row.code_hash, row.salt)

    refused = env.sign(contract.id, wrong(issued.code))
    assert isinstance(refused, contracts.Refused)
    assert isinstance(refused.error, ValidationFailed) and refused.error.field == "code"
    outcome = env.sign(contract.id, issued.code)
    assert isinstance(outcome, contracts.Signed)
    signed = outcome.contract
    assert (signed.status, signed.consent_version, signed.signer_device) == (
        "signed",
        CONSENT_VERSION,
        DEVICE,
    )
    assert env.db(lambda s: s.get(SigningCode, issued.code_id)).attempts == 2

    data = contracts.read_pdf(env.config.data_dir, signed.signed_sha256 or "")
    assert data is not None and data.startswith(
        contracts.read_pdf(env.config.data_dir, signed.draft_sha256) or b"?"
    )
    status = pyhanko_status(data, env.config.data_dir / "contract-pki" / "ca-cert.pem")
    assert status.bottom_line and status.timestamp_validity.timestamp == NOW

    found = env.verify(contract.id)
    assert found.ok and found.hash_matches and found.logged and found.draft_matches
    assert found.log.status == "pending"  # until the relay appends it
    out = found.to_json()
    assert (out["intact"], out["valid"], out["trusted"], out["bottom_line"]) == (True,) * 4

    # The leaf: ids and the signed PDF's SHA-256, nothing personal.
    pending = env.db(
        lambda s: s.scalar(
            select(PendingEntry).where(PendingEntry.leaf_hash == signed.log_leaf_hash)
        )
    )
    leaf = signing.parse_leaf(pending.leaf_input.encode())
    assert (leaf.kind, leaf.refs, leaf.digest) == (
        "contract_signed",
        {"contract_id": contract.id, "loan_id": contract.loan_id},
        contracts.sha256_hex(data),
    )
    for secret in (env.name, env.person.phone, env.person.id_number or "", "192.0.2.1"):
        assert secret not in pending.leaf_input

    with pytest.raises(Conflict) as err:  # one signature per contract
        env.code(contract.id, NOW + timedelta(minutes=5))
    assert err.value.rule == "contract-signed"
    with pytest.raises(Conflict) as err:  # one signed contract per loan
        env.draft(contract.loan_id)
    assert err.value.rule in ("already-signed", "loan-not-approved")


def test_the_log_leaf_once_appended(isolated_db_url: str, tmp_path: Path) -> None:
    env = Env(isolated_db_url, tmp_path / "data")
    contract = env.signed()
    env.db(lambda s: log.append_pending(s, now=NOW))
    found = env.verify(contract.id)
    assert found.ok and found.log.status == "appended" and found.log.leaf_index is not None
    entry = env.db(lambda s: s.get(LogEntry, found.log.leaf_index))
    assert entry.leaf_hash == contract.log_leaf_hash and entry.kind == "contract_signed"


def test_tampered_stored_file_is_a_hash_mismatch(env: Env) -> None:
    contract = env.signed()
    path = contracts.pdf_path(env.config.data_dir, contract.signed_sha256 or "")
    data = bytearray(path.read_bytes())
    at = data.index(b"stream", len(data) // 4) + 40
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    found = env.verify(contract.id)
    assert not found.hash_matches and not found.ok
    assert not found.signature.intact and not found.signature.bottom_line
    assert found.logged  # the log still holds the original hash
    with pytest.raises(Conflict) as err:
        env.db(
            lambda s: contracts.document(
                s, contract_id=contract.id, kind="signed", config=env.config
            )
        )
    assert err.value.rule == "hash-mismatch"
    path.unlink()
    found = env.verify(contract.id)
    assert found.file_sha256 is None and not found.ok and not found.signature.present


def test_attempts_expiry_and_resend(env: Env) -> None:
    contract = env.draft(env.loan())
    issued = env.code(contract.id)
    with pytest.raises(Conflict) as err:  # one SMS a minute
        env.code(contract.id, NOW + timedelta(seconds=30))
    assert err.value.rule == "code-recently-sent"
    for n in range(1, 6):
        refused = env.sign(contract.id, wrong(issued.code))
        assert isinstance(refused, contracts.Refused) and refused.error.status == 422
        assert f"{5 - n} attempts left" in refused.error.detail
    refused = env.sign(contract.id, issued.code)  # the right code, but a sixth attempt
    assert isinstance(refused, contracts.Refused)
    assert (refused.error.status, refused.error.rule) == (409, "too-many-attempts")

    later = NOW + timedelta(minutes=2)
    again = env.code(contract.id, later)  # a new code; the old one stops working
    assert env.db(lambda s: s.get(SigningCode, issued.code_id)).status == "superseded"
    expired = env.sign(contract.id, again.code, later + timedelta(minutes=10))
    assert isinstance(expired, contracts.Refused)
    assert (expired.error.status, expired.error.rule) == (409, "code-expired")
    none = env.sign(contract.id, again.code, later + timedelta(minutes=11))
    assert isinstance(none, contracts.Refused) and none.error.rule == "no-pending-code"

    third = env.code(contract.id, later + timedelta(minutes=12))
    assert isinstance(
        env.sign(contract.id, third.code, later + timedelta(minutes=21)), contracts.Signed
    )


def test_consent_version_and_refusals(env: Env) -> None:
    contract = env.draft(env.loan())
    issued = env.code(contract.id)
    with pytest.raises(ValidationFailed) as err:
        env.db(
            lambda s: contracts.sign_contract(
                s,
                contract_id=contract.id,
                code=issued.code,
                consent_version="contract-consent-v0",
                device=DEVICE,
                now=NOW,
                config=env.config,
            )
        )
    assert err.value.field == "consent_version"
    env.db(lambda s: loans.disburse(s, loan_id=contract.loan_id, value_date=TODAY))
    with pytest.raises(Conflict) as err:  # paid out before it was signed: too late
        env.sign(contract.id, issued.code)
    assert err.value.rule == "loan-not-approved"
    assert env.db(lambda s: s.get(SigningCode, issued.code_id)).attempts == 0
    with pytest.raises(Conflict) as err:
        env.draft(env.loan(with_borrower=False))
    assert err.value.rule == "no-borrower"
    with pytest.raises(ValidationFailed):
        env.draft(env.loan(), "fr")
    with pytest.raises(NotFound):
        env.verify(10**9)
    with pytest.raises(Conflict) as err:
        env.verify(contract.id)
    assert err.value.rule == "not-signed"


def _imei() -> str:
    first14 = f"35104463{random.randrange(10**6):06d}"  # TAC of the iPhone 13 (seed catalog)
    total = 0
    for i, ch in enumerate(first14):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return first14 + str((10 - total % 10) % 10)


def test_pledged_phone_terms_in_the_contract(isolated_db_url: str, tmp_path: Path) -> None:
    env = Env(isolated_db_url, tmp_path / "data")
    loan_id = env.loan()
    stale = env.draft(loan_id)  # drawn up before the phone was pledged
    env.db(lambda s: collateral.import_catalog(s, catalog.seed_catalog()))
    quotes = [
        prices.PriceQuote("apple-iphone-13", 128, "good", D(p), date(2025, 1, 12), src)
        for p, src in (("3000", "a"), ("3100", "b"), ("3200", "c"))
    ]
    env.db(lambda s: collateral.import_quotes(s, quotes, now=NOW))
    condition = grading.Condition(screen="visible_wear", body="flawless", battery_health_pct=95)
    done = env.db(
        lambda s: pledges.register(
            s,
            loan_id=loan_id,
            imei=_imei(),
            storage_gb=128,
            condition=condition,
            custody_mode="device_lock",
            business_date=TODAY,
            now=NOW,
        )
    )
    with pytest.raises(Conflict) as err:
        env.code(stale.id)
    assert err.value.rule == "draft-stale"
    contract = env.draft(loan_id)
    [terms] = contract.key_facts["collateral"]
    # The defaults of docs/collateral.md and docs/device-lock.md.
    assert terms == {
        "pledge_id": done.pledge.id,
        "custody_mode": "device_lock",
        "value": str(done.pledge.booking_value),
        "lending_value": str(done.pledge.lending_value),
        "max_ltv": "0.80",
        "warning_ltv": "0.85",
        "margin_call_ltv": "0.90",
        "liquidation_ltv": "1.00",
        "margin_call_days": 7,
        "lock_after_grace_days": 4,
    }
    draft = contracts.read_pdf(env.config.data_dir, contract.draft_sha256)
    assert draft is not None
    text = pdf_text(draft).replace("\n", "")
    for term in ("Apple iPhone 13", done.pledge.imei, "借款人继续使用（设备锁定）", "紧急呼叫"):
        assert term in text, term
    for term in ("逾期超过 4 日", "连续 7 日", "85%", "90%", "100%", "不足清偿的部分"):
        assert term in text, term
