"""A product's servicing policy: buckets, five-tier thresholds, provisioning, reminders, write-off.

Stored in the product's config (`ProductConfig.servicing_policy`) and read by the daily close,
the reminder planner and collections on each run: these are the lender's operating rules, not
contract terms, so unlike the rates and fees they are not frozen into each loan at booking (a
change applies from the next close). Every default is documented in docs/delinquency.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from mobilend.servicing.classification import ClassificationThresholds
from mobilend.servicing.delinquency import BucketScheme
from mobilend.servicing.provisioning import (
    PBOC_2002_RATES,
    ClassRates,
    ProvisionMethod,
    ProvisionSettings,
)

Share = Annotated[
    Decimal,
    Field(ge=0, le=1),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
]
Days = Annotated[int, Field(ge=0, le=3650)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReminderPlan(_Strict):
    """When borrowers are reminded: days before the due date, on it, and days after it."""

    before_due_days: list[Annotated[int, Field(ge=1, le=60)]] = [3, 1]
    on_due: bool = True
    after_due_days: list[Annotated[int, Field(ge=1, le=3650)]] = [1, 3, 7, 15, 30]
    channel: Literal["sms", "push", "email"] = "sms"


class ServicingPolicy(_Strict):
    """Delinquency, classification, provisioning, reminders and collections limits."""

    bucket_upper_bounds: list[Days] = [0, 30, 60]  # M0 | M1 1-30 | M2 31-60 | M3+ 61+
    special_mention_after: Days = 0
    substandard_after: Days = 90
    doubtful_after: Days = 270
    loss_after: Days = 360
    provision_method: ProvisionMethod = ProvisionMethod.EXPECTED_LOSS
    pd_by_bucket: dict[str, Share] = {
        "M0": Decimal("0.02"),
        "M1": Decimal("0.20"),
        "M2": Decimal("0.45"),
        "M3+": Decimal("0.80"),
    }
    lgd: Share = Decimal("0.65")
    regulatory_rates: dict[str, Share] | None = None  # by class name; None: PBoC 2002 rates
    net_of_collateral: bool = False  # regulatory method only
    legal_after_dpd: Days | None = 90  # collections may escalate to legal from this DPD
    write_off_after_dpd: Days | None = 180  # the close writes a loan off past this DPD
    max_contacts_per_day: Annotated[int, Field(ge=1, le=20)] = 6
    reminders: ReminderPlan = ReminderPlan()

    @model_validator(mode="after")
    def _consistent(self) -> ServicingPolicy:
        from mobilend.core.errors import ValidationFailed

        try:
            scheme = self.buckets()
            self.thresholds()
            settings = self.provision_settings()
        except ValidationFailed as exc:
            raise ValueError(f"{exc.field}: {exc.detail} (rule {exc.rule})") from None
        if settings.method is ProvisionMethod.EXPECTED_LOSS:
            missing = set(scheme.names) - set(self.pd_by_bucket)
            if missing:
                raise ValueError(f"pd_by_bucket: no PD for bucket(s) {sorted(missing)}")
        return self

    def buckets(self) -> BucketScheme:
        return BucketScheme.from_bounds(tuple(self.bucket_upper_bounds))

    def thresholds(self) -> ClassificationThresholds:
        return ClassificationThresholds(
            self.special_mention_after, self.substandard_after, self.doubtful_after, self.loss_after
        )

    def provision_settings(self) -> ProvisionSettings:
        rates = (
            PBOC_2002_RATES
            if self.regulatory_rates is None
            else ClassRates(**self.regulatory_rates)
        )
        if self.provision_method is ProvisionMethod.EXPECTED_LOSS:
            return ProvisionSettings(
                method=ProvisionMethod.EXPECTED_LOSS,
                pd_by_bucket=dict(self.pd_by_bucket),
                lgd=self.lgd,
                regulatory_rates=rates,
            )
        return ProvisionSettings(
            method=ProvisionMethod.REGULATORY_RATE,
            regulatory_rates=rates,
            net_of_collateral=self.net_of_collateral,
        )


DEFAULT_POLICY = ServicingPolicy()
