"""Pydantic shapes for loan applications. Money is a decimal string (never a JSON float)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mobilend.loans.schemas import Dec, no_float

MAX_IMAGE_BASE64 = 14_000_000  # about 10 MB of image (origination.ocr.MAX_IMAGE_BYTES)
Pos = Annotated[Dec, Field(gt=0)]
NonNeg = Annotated[Dec, Field(ge=0)]


class ApplicationIn(BaseModel):
    """A loan application. `device_signals` (mobilend-device/1) needs consent device_data,
    `social_metrics` (mobilend-social/1) social_commerce_data, `id_card_image_base64`
    identity_verification; credit_bureau and scoring are always needed."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    borrower_id: int = Field(ge=1)
    product_code: str = Field(min_length=1, max_length=40)
    amount: Pos
    periods: int = Field(ge=1, le=600)
    purpose: str = Field(min_length=1, max_length=40)
    income_monthly: NonNeg
    employment: Literal[
        "unemployed", "unskilled", "employee", "skilled", "self_employed", "management", "merchant"
    ]
    employment_years: NonNeg = Decimal(0)
    housing: Literal["rent", "own", "other"]
    dependents: int = Field(default=0, ge=0, le=20)
    collateral_value: NonNeg | None = None
    device_signals: dict[str, Any] | None = None
    social_metrics: dict[str, Any] | None = None
    id_card_image_base64: str | None = Field(default=None, max_length=MAX_IMAGE_BASE64, repr=False)

    _floats = field_validator(
        "amount", "income_monthly", "employment_years", "collateral_value", mode="before"
    )(classmethod(lambda cls, v: no_float(v)))


class ReviewIn(BaseModel):
    """A credit officer's decision on a referred application, with the reason for the file."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approve", "decline"]
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value.strip()
