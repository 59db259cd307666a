"""Settings from the environment (prefix MOBILEND_), with zero-config defaults."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOBILEND_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/mobilend.db"
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = "Asia/Shanghai"  # the business date is today's date in this zone
    data_dir: Path = Path("var")
    # A bootstrap admin API key written to data_dir/admin-token on first start when none exists.
    bootstrap_admin: bool = True
    # Personal-data keys (docs/origination.md): JSON {"kid": "base64 of 32 bytes", ...}, the
    # key id that encrypts new values, and the blind-index key (base64, 32 bytes). When all are
    # unset, keys are generated once into data_dir/pii-keys.json (development only).
    pii_keys: dict[str, SecretStr] | None = None
    pii_active_key: str | None = None
    pii_index_key: SecretStr | None = None
    # Age limits checked when a person is registered (products may set narrower ones).
    borrower_min_age: int = 18
    borrower_max_age: int | None = None
    # Credit decisions (docs/decisioning.md). Bureau: "simulated" (SIMULATED reports, the
    # default) or a directory of mobilend-bureau/1 files named <subject hash>.json.
    bureau: str = "simulated"
    bureau_seed: int = 0
    # Model registry (champion/challenger); default data_dir/models. When it holds no champion,
    # the default models are trained there from the bundled German credit data (seed 0), with
    # this share of applications routed to the LightGBM challenger.
    model_dir: Path | None = None
    # Load the models when the app starts (decision servers); off by default so a server that
    # only services loans stays small; then they load on the first decision.
    preload_models: bool = False
    challenger_share: float = 0.2
    # Risk price = cost of funds + PD x LGD + operating cost + margin (fractions a year).
    cost_of_funds: Decimal = Decimal("0.04")
    lgd: Decimal = Decimal("0.60")
    operating_cost: Decimal = Decimal("0.03")
    margin: Decimal = Decimal("0.02")
    # Legal cap on the annualized rate by IRR (decisioning.pricing.JURISDICTIONS).
    jurisdiction: str = "CN-24"
    # Highest loan-to-value on a pledged phone's value (the collateral module comes later).
    collateral_max_ltv: Decimal = Decimal("0.50")
    # The transparency log's timetable in `mobilend serve` (docs/transparency-log.md): sign a
    # tree head every N seconds when the tree grew, audit the whole log every M seconds.
    log_schedule: bool = True
    log_sth_interval_seconds: int = 300
    log_audit_interval_seconds: int = 86_400
    # Shown to borrowers on a locked phone and in device messages (docs/device-lock.md).
    lender_name: str = "Mobilend"
    support_phone: str = "400-000-0000"
    # An offer can be accepted up to and including this many days after the decision's
    # business date (its `valid_until`); later acceptance is a 409 offer-expired problem.
    offer_valid_days: int = Field(default=7, ge=0)
    # Notifications (docs/notifications.md). The adapter behind each channel: "file" appends
    # one JSON line per message to notify_dir/<channel>.jsonl (development; the default),
    # e-mail may be "smtp". The relay retries a failed send with growing delays from
    # notify_retry_seconds and gives up after notify_max_attempts; a claimed message is
    # another relay's again after notify_lease_seconds (a crashed relay's messages are resent).
    notify_dir: Path | None = None  # default data_dir/notify
    notify_sms_adapter: str = "file"
    notify_push_adapter: str = "file"
    notify_email_adapter: str = "file"
    notify_max_attempts: int = Field(default=5, ge=1, le=50)
    notify_retry_seconds: int = Field(default=60, ge=1)
    notify_lease_seconds: int = Field(default=300, ge=10)
    notify_batch_size: int = Field(default=100, ge=1, le=10_000)
    # Borrower-local quiet hours (22:00-08:00) are judged in this zone unless the borrower
    # record names its own.
    borrower_timezone: str = "Asia/Shanghai"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False  # STARTTLS after connecting (port 587)
    smtp_ssl: bool = False  # TLS from the first byte (port 465)
    smtp_from: str = "Mobilend <noreply@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    # The daily close (docs/daily-close.md): loan ids per partition task; when the scheduled
    # close runs (a cron line in UTC, for Procrastinate workers: 16:30 UTC is 00:30 in
    # Shanghai); how many local worker processes `mobilend close run` starts on PostgreSQL.
    close_partition_size: int = Field(default=25_000, ge=1)
    close_cron: str = "30 16 * * *"
    close_workers: int = Field(default=2, ge=0, le=64)
    # On SQLite `mobilend serve` closes yesterday itself once the lender's local time is past
    # close_time (HH:MM in `timezone`); on PostgreSQL the workers' schedule does it.
    close_schedule: bool = True
    close_time: str = Field(default="00:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    @property
    def notify_path(self) -> Path:
        return self.notify_dir if self.notify_dir is not None else self.data_dir / "notify"


@lru_cache
def get_settings() -> Settings:
    return Settings()
