"""Credit-bureau reports: the mobilend-bureau/1 format, its validation (errors name the JSON
path), the file and simulated adapters, and that a report names its subject by a hash only."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources.bureau import (
    AccountStatus,
    BlacklistFlag,
    BureauReport,
    FileBureau,
    LenderType,
    NoReport,
    SimulatedBureau,
    parse_bureau_report,
)

SUBJECT = hashlib.sha256(b"test-subject").hexdigest()
AS_OF = date(2025, 6, 30)


def report_doc() -> dict[str, Any]:
    return {
        "format": "mobilend-bureau/1",
        "subject": {"id_hash": SUBJECT},
        "report_date": "2025-06-30",
        "source": "test",
        "currency": "CNY",
        "accounts": [
            {
                "lender_type": "bank",
                "opened": "2021-03-15",
                "closed": None,
                "limit": "30000.00",
                "balance": "4200.00",
                "monthly_payment": "650.00",
                "status": "current",
                "worst_dpd_24m": 0,
            },
            {
                "lender_type": "online_platform",
                "opened": "2024-11-02",
                "limit": "8000.00",
                "balance": "5100.00",
                "monthly_payment": "720.50",
                "status": "overdue",
                "worst_dpd_24m": 12,
            },
            {
                "lender_type": "microloan",
                "opened": "2023-01-10",
                "closed": "2023-12-10",
                "limit": "3000",
                "balance": "0",
                "monthly_payment": "0",
                "status": "current",
                "worst_dpd_24m": 0,
            },
        ],
        "inquiries": [{"date": "2025-05-20", "reason": "loan_approval"}],
        "public_records": [
            {
                "type": "court_judgment",
                "date": "2024-11-18",
                "amount": "6500.00",
                "satisfied": False,
            }
        ],
        "blacklist": ["dishonest_debtor"],
    }


def test_parses_every_part_of_the_format() -> None:
    report = parse_bureau_report(report_doc())
    assert report.subject_hash == SUBJECT
    assert report.report_date == AS_OF
    bank, platform, micro = report.accounts
    assert bank.lender_type is LenderType.BANK and bank.closed is None
    assert bank.balance == Decimal("4200.00") and bank.monthly_payment == Decimal("650.00")
    assert platform.status is AccountStatus.OVERDUE and platform.worst_dpd_24m == 12
    assert platform.closed is None  # "closed" may be left out
    assert micro.closed == date(2023, 12, 10) and not micro.is_open(AS_OF)
    assert report.inquiries[0].date == date(2025, 5, 20)
    assert report.court_judgments[0].amount == Decimal("6500.00")
    assert report.blacklist == frozenset({BlacklistFlag.DISHONEST_DEBTOR})


def test_to_json_round_trips() -> None:
    report = parse_bureau_report(report_doc())
    assert parse_bureau_report(json.loads(json.dumps(report.to_json()))) == report


def mutate(path: str, value: Any) -> dict[str, Any]:
    """report_doc() with the value at a dotted path (list indexes as numbers) replaced."""
    doc = copy.deepcopy(report_doc())
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "rule"),
    [
        ("accounts.2.balance", "-1.00", "accounts[2].balance", "non-negative"),
        ("accounts.2.balance", "12.50", "accounts[2].balance", "closed-zero-balance"),
        ("accounts.1.balance", 5100.5, "accounts[1].balance", "decimal-string"),
        ("accounts.0.limit", "1.005", "accounts[0].limit", "max-2-decimals"),
        ("accounts.0.lender_type", "pawnshop", "accounts[0].lender_type", "enum"),
        ("accounts.1.status", DELETE, "accounts[1].status", "required"),
        ("accounts.1.worst_dpd_24m", 0, "accounts[1].worst_dpd_24m", "overdue-has-dpd"),
        ("accounts.0.worst_dpd_24m", "3", "accounts[0].worst_dpd_24m", "type-integer"),
        ("accounts.0.worst_dpd_24m", -1, "accounts[0].worst_dpd_24m", "minimum"),
        ("accounts.0.opened", "2025/01/01", "accounts[0].opened", "date"),
        ("accounts.0.opened", "2025-07-01", "accounts[0].opened", "not-after-report"),
        ("accounts.2.closed", "2022-12-31", "accounts[2].closed", "after-opened"),
        ("accounts.0.overdraft", "1.00", "accounts[0].overdraft", "unknown-field"),
        ("accounts.1", "not an account", "accounts[1]", "type-object"),
        ("accounts", {}, "accounts", "type-array"),
        ("inquiries.0.reason", "marketing", "inquiries[0].reason", "enum"),
        ("inquiries.0.date", "2025-07-01", "inquiries[0].date", "not-after-report"),
        ("public_records.0.type", "tax_lien", "public_records[0].type", "enum"),
        ("public_records.0.satisfied", "no", "public_records[0].satisfied", "type-boolean"),
        ("blacklist.0", "naughty", "blacklist[0]", "enum"),
        ("format", "mobilend-bureau/2", "format", "format"),
        ("report_date", None, "report_date", "required"),
    ],
)
def test_validation_errors_name_the_json_path(path: str, value: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_bureau_report(mutate(path, value))
    assert (err.value.field, err.value.rule) == (field, rule)


def test_root_must_be_an_object() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_bureau_report([report_doc()])
    assert (err.value.field, err.value.rule) == ("$", "type-object")


# --- no plaintext personal data ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field", "rule"),
    [
        ("name", "张三", "name", "unknown-field"),
        ("subject.id_number", "110101199003077777", "subject.id_number", "unknown-field"),
        ("subject.phone", "13800138000", "subject.phone", "unknown-field"),
        ("subject.id_hash", "110101199003077777", "subject.id_hash", "pattern"),
        ("subject.id_hash", SUBJECT.upper(), "subject.id_hash", "pattern"),
    ],
)
def test_personal_data_is_refused(path: str, value: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_bureau_report(mutate(path, value))
    assert (err.value.field, err.value.rule) == (field, rule)


def test_a_report_names_its_subject_by_hash_only() -> None:
    id_number = "110101199003077777"
    subject = hashlib.sha256(id_number.encode()).hexdigest()
    for result in (
        SimulatedBureau(1, thin_file_rate=0).fetch(subject, as_of=AS_OF),
        parse_bureau_report(mutate("subject.id_hash", subject)),
    ):
        assert isinstance(result, BureauReport)
        text = json.dumps(result.to_json(), ensure_ascii=False)
        assert id_number not in text and repr(id_number) not in repr(result)
        assert result.to_json()["subject"] == {"id_hash": subject}


# --- FileBureau ----------------------------------------------------------------------------


def write(directory: Path, doc: dict[str, Any], name: str = SUBJECT) -> None:
    (directory / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")


def test_file_bureau_reads_the_subjects_file(tmp_path: Path) -> None:
    write(tmp_path, report_doc())
    result = FileBureau(tmp_path).fetch(SUBJECT, as_of=AS_OF)
    assert result == parse_bureau_report(report_doc())


def test_file_bureau_reads_json_numbers_as_decimals(tmp_path: Path) -> None:
    # A JSON number 4200.10 must not pass through float: load_json reads it as Decimal.
    (tmp_path / f"{SUBJECT}.json").write_text(
        json.dumps(report_doc()).replace('"4200.00"', "4200.10"), encoding="utf-8"
    )
    result = FileBureau(tmp_path).fetch(SUBJECT, as_of=AS_OF)
    assert isinstance(result, BureauReport)
    assert result.accounts[0].balance == Decimal("4200.10")


def test_no_file_is_a_thin_file_not_an_error(tmp_path: Path) -> None:
    result = FileBureau(tmp_path).fetch(SUBJECT, as_of=AS_OF)
    assert result == NoReport(SUBJECT, AS_OF, f"file:{tmp_path.name}")


@pytest.mark.parametrize("bad", ["../etc/passwd", "張三", SUBJECT[:-1], ""])
def test_file_bureau_refuses_anything_but_a_hash(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        FileBureau(tmp_path).fetch(bad, as_of=AS_OF)
    assert (err.value.field, err.value.rule) == ("subject_hash", "hash")


def test_file_bureau_checks_subject_and_date(tmp_path: Path) -> None:
    other = hashlib.sha256(b"someone else").hexdigest()
    write(tmp_path, report_doc(), name=other)
    with pytest.raises(ValidationFailed) as err:
        FileBureau(tmp_path).fetch(other, as_of=AS_OF)
    assert err.value.rule == "matches-request"
    write(tmp_path, report_doc())
    with pytest.raises(ValidationFailed) as err:
        FileBureau(tmp_path).fetch(SUBJECT, as_of=date(2025, 6, 29))  # report is dated 30 June
    assert (err.value.field, err.value.rule) == ("report_date", "not-after-as-of")


def test_broken_json_is_a_validation_error(tmp_path: Path) -> None:
    (tmp_path / f"{SUBJECT}.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        FileBureau(tmp_path).fetch(SUBJECT, as_of=AS_OF)
    assert (err.value.field, err.value.rule) == ("$", "json")


def test_sample_reports_are_valid() -> None:
    files = sorted((SAMPLES_DIR / "bureau").glob("*.json"))
    assert len(files) == 2
    for path in files:
        result = FileBureau(SAMPLES_DIR / "bureau").fetch(path.stem, as_of=AS_OF)
        assert isinstance(result, BureauReport) and result.subject_hash == path.stem


# --- SimulatedBureau -----------------------------------------------------------------------

SUBJECTS = [hashlib.sha256(f"subject-{i}".encode()).hexdigest() for i in range(300)]


def test_simulated_bureau_is_deterministic() -> None:
    first = [SimulatedBureau(42).fetch(s, as_of=AS_OF) for s in SUBJECTS[:50]]
    again = [SimulatedBureau(42).fetch(s, as_of=AS_OF) for s in SUBJECTS[:50]]
    other_seed = [SimulatedBureau(43).fetch(s, as_of=AS_OF) for s in SUBJECTS[:50]]
    assert first == again
    assert first != other_seed


def test_simulated_reports_are_valid_and_dated_up_to_as_of() -> None:
    results = [SimulatedBureau(7).fetch(s, as_of=AS_OF) for s in SUBJECTS]
    reports = [r for r in results if isinstance(r, BureauReport)]
    thin = len(results) - len(reports)
    assert 10 <= thin <= 60  # thin_file_rate 0.1 of 300 subjects, with room for chance
    for report in reports:
        assert report.source == "simulated" and report.report_date == AS_OF
        assert parse_bureau_report(report.to_json()) == report
        assert all(a.opened <= AS_OF for a in report.accounts)
        assert all(q.date <= AS_OF for q in report.inquiries)
    overdue = sum(a.status is AccountStatus.OVERDUE for r in reports for a in r.accounts)
    accounts = sum(len(r.accounts) for r in reports)
    assert 0 < overdue < 0.2 * accounts  # some delinquency, mostly performing


def test_simulated_thin_file_rate_bounds() -> None:
    assert isinstance(SimulatedBureau(1, thin_file_rate=1).fetch(SUBJECT, as_of=AS_OF), NoReport)
    assert isinstance(
        SimulatedBureau(1, thin_file_rate=0).fetch(SUBJECT, as_of=AS_OF), BureauReport
    )
