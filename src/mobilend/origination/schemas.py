"""Pydantic shapes for borrowers and consents. Personal fields are hidden from repr and errors.

Bodies check only shape (types, lengths); the identity rules (check digits, dates, regions) are
in validation.py so their errors name the field and a stable rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class BorrowerIn(Strict):
    """A person gives `id_number` (resident ID); a merchant gives `uscc` instead."""

    kind: Literal["person", "merchant"] = "person"
    name: str = Field(min_length=1, max_length=100, repr=False)
    id_number: str | None = Field(default=None, max_length=40, repr=False)
    uscc: str | None = Field(default=None, max_length=40, repr=False)
    phone: str = Field(min_length=1, max_length=40, repr=False)
    bank_card: str | None = Field(default=None, max_length=40, repr=False)
    address: str | None = Field(default=None, max_length=200, repr=False)


class BorrowerSearch(Strict):
    """Exactly one of the fields: look-ups go through the blind index, never through URLs."""

    id_number: str | None = Field(default=None, max_length=40, repr=False)
    uscc: str | None = Field(default=None, max_length=40, repr=False)
    phone: str | None = Field(default=None, max_length=40, repr=False)


class BorrowerOut(BaseModel):
    """Masked: 110105********002X, 138****5678, 张*, **** 0123."""

    id: int
    kind: str
    name: str
    id_number: str | None = None
    uscc: str | None = None
    phone: str
    bank_card: str | None = None
    address: str | None = None
    gender: str | None = None
    age: int | None = None
    region_code: str | None = None
    key_id: str
    created_at: datetime | None = None


class ConsentIn(Strict):
    purpose: str = Field(min_length=1, max_length=40)
    scope: str = Field(min_length=1, max_length=2000)
    text_version: str = Field(min_length=1, max_length=40)
    # Separate consent for sensitive data (PIPL art. 29); defaults to what the purpose needs.
    sensitive: bool | None = None
    channel: str | None = Field(default=None, max_length=40)
    ip: IPvAnyAddress | None = Field(default=None, repr=False)
    granted_at: datetime | None = None  # default: now; never in the future


class ConsentOut(BaseModel):
    id: int
    borrower_id: int
    purpose: str
    scope: str
    text_version: str
    sensitive: bool
    channel: str | None
    ip_recorded: bool
    granted_at: datetime
    withdrawn_at: datetime | None
    active: bool
