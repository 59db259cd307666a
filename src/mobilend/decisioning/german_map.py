"""Map an application's features onto the German credit characteristics (pure).

The default model is trained on the German credit data bundled in the `dmba` package (1,000
loans, 30% bad), whose characteristics are coded as in the data's dictionary (CHK_ACCT,
HISTORY, EMPLOYMENT, ...). An applicant on this platform is described by other data
(bureau report, application form, device), so scoring with the default model needs this
documented translation. Characteristics we cannot know are left missing (the scorecard's
binning gives missing values their own bin). Lenders should train on their own book with
`mobilend model train`, on the feature names `features.build_features` produces; a model
trained that way is scored without this map.

Protected characteristics are never used: the sex/marital-status dummies and FOREIGN are
dropped before training (see DROPPED).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Sex / marital status and national origin: excluded from the default model (fair lending).
DROPPED = ("MALE_DIV", "MALE_SINGLE", "MALE_MAR_or_WID", "FOREIGN")

# SAV_ACCT has a code for "unknown / no savings account" (4): what we know of an applicant's
# savings is exactly that, so the row says so rather than leaving it missing.
SAV_UNKNOWN = 4

PURPOSE_COLUMNS = {
    "phone": "RADIO/TV",  # consumer electronics
    "electronics": "RADIO/TV",
    "furniture": "FURNITURE",
    "education": "EDUCATION",
    "training": "RETRAINING",
    "car_new": "NEW_CAR",
    "car_used": "USED_CAR",
}


# Columns that are never a borrower-facing reason: the purpose indicators (a "used car"
# reason on a phone loan means nothing to the borrower) and the columns this map fixes by
# design (no co-applicants or guarantors; a phone is always on record). The operator's
# explain view still shows every column's impact.
NOT_REASONS = frozenset(
    {"NEW_CAR", "USED_CAR", "FURNITURE", "RADIO/TV", "EDUCATION", "RETRAINING"}
    | {"CO-APPLICANT", "GUARANTOR", "TELEPHONE", "SAV_ACCT"}
)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def history_code(features: Mapping[str, Any]) -> int | None:
    """HISTORY: 0 no credits taken, 2 existing credits paid duly, 3 delays in the past,
    4 critical account; from the bureau report's accounts and worst days past due."""
    if features.get("bureau_thin_file") is None and features.get("worst_dpd_24m") is None:
        return None  # no bureau report at all
    if features.get("blacklisted"):
        return 4
    if features.get("bureau_thin_file"):
        return 0
    worst = _num(features.get("worst_dpd_24m")) or 0.0
    if worst == 0:
        return 2
    return 3 if worst <= 30 else 4


def employment_code(years: float | None) -> int | None:
    """EMPLOYMENT: 0 unemployed, 1 under 1 year, 2 1-4 years, 3 4-7 years, 4 7+ years."""
    if years is None:
        return None
    if years <= 0:
        return 0
    if years < 1:
        return 1
    if years < 4:
        return 2
    return 3 if years < 7 else 4


def install_rate_code(installment: float | None, income_monthly: float | None) -> int | None:
    """INSTALL_RATE (1-4): the installment's share of monthly income, in four bands
    (under 10%, 10-20%, 20-35%, 35% and over)."""
    if installment is None or not income_monthly:
        return None
    share = installment / income_monthly
    if share < 0.10:
        return 1
    if share < 0.20:
        return 2
    return 3 if share < 0.35 else 4


JOB_CODES = {
    "unemployed": 0,
    "unskilled": 1,
    "employee": 2,
    "skilled": 2,
    "self_employed": 3,
    "management": 3,
    "merchant": 3,
}


def german_row(features: Mapping[str, Any], application: Mapping[str, Any]) -> dict[str, Any]:
    """One row in the German credit schema (None where unknown).

    `features` as `features.build_features` names them (age, income_monthly, active_accounts,
    other_platform_loans, worst_dpd_24m, bureau_thin_file, blacklisted); `application` keys:
    term_months, amount, employment_years, installment (estimated), employment, dependents,
    housing (rent / own / other), purpose."""
    purpose = str(application.get("purpose") or "").lower()
    row: dict[str, Any] = {
        "CHK_ACCT": None,
        "DURATION": _num(application.get("term_months")),
        "HISTORY": history_code(features),
        "AMOUNT": _num(application.get("amount")),
        "SAV_ACCT": SAV_UNKNOWN,
        "EMPLOYMENT": employment_code(_num(application.get("employment_years"))),
        "INSTALL_RATE": install_rate_code(
            _num(application.get("installment")), _num(features.get("income_monthly"))
        ),
        "CO-APPLICANT": 0,
        "GUARANTOR": 0,
        "PRESENT_RESIDENT": None,
        "REAL_ESTATE": None,
        "PROP_UNKN_NONE": None,
        "AGE": _num(features.get("age")),
        "OTHER_INSTALL": None
        if features.get("other_platform_loans") is None
        else int((_num(features.get("other_platform_loans")) or 0) > 0),
        "RENT": None,
        "OWN_RES": None,
        "NUM_CREDITS": None
        if features.get("active_accounts") is None
        else min(4, max(1, int(_num(features.get("active_accounts")) or 1))),
        "JOB": JOB_CODES.get(str(application.get("employment") or "").lower()),
        "NUM_DEPENDENTS": _num(application.get("dependents")),
        "TELEPHONE": 1,
    }
    housing = str(application.get("housing") or "").lower()
    if housing:
        row["RENT"] = int(housing == "rent")
        row["OWN_RES"] = int(housing == "own")
    for column in set(PURPOSE_COLUMNS.values()) | {"NEW_CAR", "USED_CAR"}:
        row[column] = 0
    if purpose in PURPOSE_COLUMNS:
        row[PURPOSE_COLUMNS[purpose]] = 1
    return row
