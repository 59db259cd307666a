"""The flat feature dict: names and docs, figures worked by hand, window boundaries, and None
(never an invented value) for a source that is missing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.features import (
    BUREAU_FEATURE_DOCS,
    FEATURE_DOCS,
    build_features,
)
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources.bureau import BureauReport, NoReport, parse_bureau_report
from mobilend.decisioning.sources.device import DEVICE_FEATURE_DOCS, parse_device_signals
from mobilend.decisioning.sources.social import (
    SOCIAL_FEATURE_DOCS,
    Floats,
    parse_social_metrics,
)

SUBJECT = hashlib.sha256(b"applicant").hexdigest()
AS_OF = date(2025, 6, 30)
APPLICANT = {"birth_date": "1990-06-30", "income_monthly": "9000.00"}


def account(lender: str, monthly: str, *, balance: str = "1000.00", limit: str = "5000.00",
            closed: str | None = None, dpd: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "lender_type": lender,
        "opened": "2023-01-15",
        "closed": closed,
        "limit": limit,
        "balance": "0" if closed else balance,
        "monthly_payment": monthly,
        "status": "current",
        "worst_dpd_24m": dpd,
    }


def report(
    accounts: list[dict[str, Any]], inquiries: Sequence[tuple[str, str]] = ()
) -> BureauReport:
    return parse_bureau_report(
        {
            "format": "mobilend-bureau/1",
            "subject": {"id_hash": SUBJECT},
            "report_date": "2025-06-30",
            "source": "test",
            "currency": "CNY",
            "accounts": accounts,
            "inquiries": [{"date": d, "reason": r} for d, r in inquiries],
            "public_records": [],
            "blacklist": [],
        }
    )


ACCOUNTS = [
    account("bank", "650.00", balance="4200.00", limit="30000.00"),
    account("online_platform", "720.50", balance="5100.00", limit="8000.00"),
    account("microloan", "300.00", closed="2024-03-01", dpd=45),  # closed: no payment counted
    account("consumer_finance", "0.00", balance="0.00", limit="2000.00"),  # open, unused
]


def build(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "applicant": APPLICANT,
        "bureau": None,
        "device": None,
        "social": None,
        "as_of": AS_OF,
    }
    return build_features(**(args | kwargs))


def test_every_feature_is_documented_in_english_and_chinese() -> None:
    assert set(build()) == set(FEATURE_DOCS)
    for name, doc in FEATURE_DOCS.items():
        assert set(doc) == {"en", "zh", "unit"}, name
        assert all(doc.values()), name
    required = {
        "age", "income_monthly", "dti", "applications_30d", "other_platform_loans",
        "worst_dpd_24m", "bureau_thin_file", "blacklisted", "total_bureau_balance",
        "device_rooted",
    }  # fmt: skip
    assert required <= set(FEATURE_DOCS)
    assert all(name.startswith("device_") for name in DEVICE_FEATURE_DOCS)
    assert all(name.startswith("social_") for name in SOCIAL_FEATURE_DOCS)


def test_dti_by_hand() -> None:
    f = build(
        bureau=report(ACCOUNTS),
        applicant=APPLICANT | {"monthly_debt_payments": "429.50"},
    )
    # open accounts pay 650.00 + 720.50 + 0.00 = 1370.50 a month (the closed microloan's
    # 300.00 does not count); with 429.50 declared: 1800.00 / 9000.00 = 0.2
    assert f["bureau_monthly_payments"] == 1370.5
    assert f["dti"] == pytest.approx(0.2, rel=1e-15)
    # without declared debts: 1370.50 / 9000 = 0.152277...
    assert build(bureau=report(ACCOUNTS))["dti"] == pytest.approx(1370.5 / 9000, rel=1e-15)


def test_bureau_counts_by_hand() -> None:
    f = build(bureau=report(ACCOUNTS))
    assert f["active_accounts"] == 3  # the microloan is closed
    assert f["other_platform_loans"] == 2  # online_platform + consumer_finance (open), not bank
    assert f["total_bureau_balance"] == 9300.0  # 4200 + 5100 + 0
    assert f["bureau_utilisation"] == pytest.approx(9300 / 40000, rel=1e-15)  # limits 30k+8k+2k
    assert f["worst_dpd_24m"] == 45  # closed accounts count: the history is what it is
    assert f["bureau_thin_file"] is False and f["blacklisted"] is False
    assert f["bureau_history_months"] == 29  # 2023-01-15 to 2025-06-30: 29 whole months
    assert f["bureau_report_age_days"] == 0


def test_applications_30d_window_boundary() -> None:
    # as_of 2025-06-30. d = (as_of - date).days; counted when 0 <= d < 30.
    inquiries = [
        ("2025-06-30", "loan_approval"),  # d = 0: counts
        ("2025-06-01", "loan_approval"),  # d = 29: counts
        ("2025-05-31", "loan_approval"),  # d = 30: exactly 30 days ago, does NOT count
        ("2025-06-15", "credit_card"),  # not a loan application
        ("2025-06-15", "post_loan"),  # a lender's own monitoring
        ("2025-04-02", "loan_approval"),  # d = 89: in the 90-day count only
        ("2025-04-01", "loan_approval"),  # d = 90: in neither
    ]
    f = build(bureau=report(ACCOUNTS, inquiries))
    assert f["applications_30d"] == 2
    assert f["applications_90d"] == 4


def test_no_report_is_a_thin_file() -> None:
    f = build(bureau=NoReport(SUBJECT, AS_OF, "test"), applicant=APPLICANT | {
        "monthly_debt_payments": "900"})  # fmt: skip
    assert f["bureau_thin_file"] is True
    assert f["applications_30d"] == 0 and f["other_platform_loans"] == 0
    assert f["total_bureau_balance"] == 0.0 and f["blacklisted"] is False
    assert f["worst_dpd_24m"] is None and f["bureau_utilisation"] is None
    assert f["dti"] == pytest.approx(0.1, rel=1e-15)  # 900 / 9000


def test_a_file_without_accounts_is_thin() -> None:
    f = build(bureau=report([], [("2025-06-20", "loan_approval")]))
    assert f["bureau_thin_file"] is True and f["applications_30d"] == 1
    assert f["worst_dpd_24m"] is None and f["bureau_history_months"] is None


def test_missing_sources_give_none() -> None:
    f = build(applicant={})
    assert all(value is None for value in f.values())
    f = build()
    assert f["age"] == 35 and f["income_monthly"] == 9000.0
    assert f["dti"] is None  # without the bureau the debts are unknown
    for name in (*BUREAU_FEATURE_DOCS, *DEVICE_FEATURE_DOCS, *SOCIAL_FEATURE_DOCS):
        assert f[name] is None, name


@pytest.mark.parametrize(
    ("birth_date", "age"),
    [
        ("1990-06-30", 35),  # birthday today
        ("1990-07-01", 34),  # birthday tomorrow
        (date(2007, 6, 30), 18),
        ("2000-02-29", 25),
    ],
)
def test_age_in_whole_years(birth_date: Any, age: int) -> None:
    assert build(applicant={"birth_date": birth_date})["age"] == age


def test_leap_day_birthday_in_a_common_year() -> None:
    # Born 29 Feb 2004: on 28 Feb 2025 still 20, on 1 Mar 2025 21.
    applicant = {"birth_date": "2004-02-29"}
    assert build(applicant=applicant, as_of=date(2025, 2, 28))["age"] == 20
    assert build(applicant=applicant, as_of=date(2025, 3, 1))["age"] == 21


@pytest.mark.parametrize(
    ("applicant", "field", "rule"),
    [
        ({"birth_date": "30/06/1990"}, "birth_date", "date"),
        ({"birth_date": "2030-01-01"}, "birth_date", "past"),
        ({"income_monthly": 9000.5}, "income_monthly", "decimal-string"),
        ({"income_monthly": "-1"}, "income_monthly", "non-negative"),
    ],
)
def test_applicant_errors(applicant: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        build(applicant=applicant)
    assert (err.value.field, err.value.rule) == (field, rule)


def test_zero_income_gives_no_dti() -> None:
    f = build(applicant={"income_monthly": "0"}, bureau=report(ACCOUNTS))
    assert f["income_monthly"] == 0.0 and f["dti"] is None


def test_a_report_from_after_as_of_is_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        build(bureau=report(ACCOUNTS), as_of=date(2025, 6, 29))
    assert err.value.rule == "not-after-as-of"


def test_device_and_social_features_are_merged() -> None:
    device = parse_device_signals(
        json.loads((SAMPLES_DIR / "device.json").read_text(encoding="utf-8")), imei_key=b"k"
    )
    social = parse_social_metrics(
        json.loads((SAMPLES_DIR / "social.json").read_text(encoding="utf-8"))
    )

    def neutral(texts: Sequence[str]) -> Floats:
        return np.full(len(texts), 0.5)

    f = build(device=device, social=social, sentiment=neutral, as_of=date(2025, 6, 1))
    assert f["device_rooted"] is False and f["device_sim_tenure_days"] == 830
    assert f["social_sentiment_mean"] == 0.5 and f["social_negative_share"] == 0.0
    assert f["social_platform"] == "douyin"
    # the sample's last week (ending 2025-06-01): engagement = 6% + 1% + 0.8% of views
    assert f["social_engagement_rate_30d"] == pytest.approx(0.078, rel=1e-3)
    assert all(isinstance(v, (bool, int, float, str)) or v is None for v in f.values())
