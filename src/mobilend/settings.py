"""Settings from the environment (prefix MOBILEND_), with zero-config defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
