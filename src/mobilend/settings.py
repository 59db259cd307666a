"""Settings from the environment (prefix MOBILEND_), with zero-config defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
