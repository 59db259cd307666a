"""LoanTerms <-> JSON-safe dict (decimals and dates as strings), for storage and APIs."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from mobilend.loans.terms import Frequency, FrequencyUnit, LoanTerms

_ENUM_FIELDS = {f.name: f.type for f in fields(LoanTerms)}


def terms_to_dict(terms: LoanTerms) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(LoanTerms):
        value = getattr(terms, f.name)
        if isinstance(value, Frequency):
            out[f.name] = {"unit": value.unit.value, "count": value.count}
        elif isinstance(value, Enum):
            out[f.name] = value.value
        elif isinstance(value, (Decimal, date)):
            out[f.name] = str(value)
        else:
            out[f.name] = value
    return out


def terms_from_dict(data: dict[str, Any]) -> LoanTerms:
    from mobilend.loans import terms as t

    kwargs: dict[str, Any] = {}
    for f in fields(LoanTerms):
        if f.name not in data:
            continue
        value = data[f.name]
        annotation = str(f.type)
        if f.name == "frequency":
            kwargs[f.name] = Frequency(FrequencyUnit(value["unit"]), int(value["count"]))
        elif value is None:
            kwargs[f.name] = None
        elif "Decimal" in annotation:
            kwargs[f.name] = Decimal(value)
        elif "date" in annotation:
            kwargs[f.name] = date.fromisoformat(value)
        elif annotation in t.__dict__ and isinstance(t.__dict__[annotation], type):
            kwargs[f.name] = t.__dict__[annotation](value)
        elif annotation == "RoundingMode":
            from mobilend.core.money import RoundingMode

            kwargs[f.name] = RoundingMode(value)
        else:
            kwargs[f.name] = value
    return LoanTerms(**kwargs)
