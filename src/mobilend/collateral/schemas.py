"""Pydantic shapes for the collateral API. Money and ratios are decimal strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from mobilend.collateral import grading
from mobilend.loans.schemas import Pos, Strict

Ratio = Annotated[Decimal, Field(gt=0)]


class ConditionIn(Strict):
    screen: str = Field(description="flawless | minor_wear | visible_wear | cracked")
    body: str = Field(description="flawless | minor_wear | visible_wear | dented | cracked")
    battery_health_pct: int = Field(description="0..100")
    failed_checks: list[str] = Field(default_factory=list)
    carrier_locked: bool = False

    def to_condition(self) -> grading.Condition:
        return grading.Condition(
            screen=self.screen,
            body=self.body,
            battery_health_pct=self.battery_health_pct,
            failed_checks=tuple(self.failed_checks),
            carrier_locked=self.carrier_locked,
        )


class CatalogImportIn(Strict):
    seed: bool = Field(default=False, description="import the catalog shipped with Mobilend")
    csv: str | None = Field(default=None, description="catalog CSV (docs/collateral.md)")


class QuotesImportIn(Strict):
    format: Literal["csv", "json"] = "csv"
    data: str = Field(description="the quotes file's text")


class IdentifyIn(Strict):
    imei: str


class ValuationIn(Strict):
    model_key: str | None = None
    imei: str | None = Field(default=None, description="identifies the model by its TAC")
    storage_gb: int
    condition: ConditionIn
    horizon: date | None = Field(default=None, description="forecast date (default: today)")
    product_code: str | None = Field(default=None, description="haircut from its terms")


class CollateralTermsIn(Strict):
    haircut: Annotated[Decimal, Field(ge=0, lt=1)] | None = None
    max_ltv: Ratio | None = None
    warning_ltv: Ratio | None = None
    margin_call_ltv: Ratio | None = None
    liquidation_ltv: Ratio | None = None
    margin_call_days: int | None = None
    required: bool | None = Field(default=None, description="no disbursement without a pledge")
    lock_policy: dict[str, object] | None = None


class PledgeIn(Strict):
    imei: str
    model_key: str | None = None
    storage_gb: int
    condition: ConditionIn
    custody_mode: Literal["pawn", "device_lock"]
    location: str | None = Field(default=None, description="store or warehouse (pawn mode)")


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class LiquidationIn(Strict):
    proceeds: Pos
    sold_on: date | None = None
    buyer: str = Field(default="", max_length=120)


class MarkIn(Strict):
    business_date: date | None = None
