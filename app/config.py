"""Settings read from the environment (and `.env`), validated once at start."""

from __future__ import annotations

import base64
import uuid
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.security import parse_api_keys

DEFAULT_GOOGLE_ENDPOINT = "https://www.googleapis.com/calendar/v3/"

# How much of the patient a Google event shows: `full` (name and mobile), `name`, or `none`
# (no name, phone or e-mail; the appointment id only), so a clinic chooses what reaches Google.
EventDetails = Literal["full", "name", "none"]
PlanCacheMode = Literal["auto", "force_generic_plan", "force_custom_plan"]


class SettingsError(Exception):
    """A setting is malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str | None = None
    # A streaming replica of DATABASE_URL for reads that decide nothing (app/replica.py).
    database_read_url: str | None = None
    read_replica_max_lag_seconds: float = Field(default=5.0, gt=0, le=3600)
    read_replica_check_seconds: float = Field(default=1.0, gt=0, le=30)
    data_dir: Path = Path(".data")
    service_api_key: str | None = None
    clinic_id: uuid.UUID = uuid.UUID(int=0)
    clinic_timezone: str = "UTC"
    default_phone_region: str | None = None

    google_calendar_credentials_path: Path | None = None
    google_calendar_delegated_admin_email: str | None = None
    google_calendar_api_endpoint: str = DEFAULT_GOOGLE_ENDPOINT
    google_calendar_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Read at start: a change reaches events created or updated afterwards; the resync
    # command rewrites the others.
    google_calendar_event_details: EventDetails = "full"

    rag_service_url: str | None = None
    rag_service_api_key: str | None = None
    rag_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    cors_origins: str = ""
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    db_pool_size: int = Field(default=20, ge=1, le=500)
    # Overflow connections are opened and closed per use, which costs PostgreSQL a backend
    # fork each time; waiting briefly for a pooled one is cheaper under load.
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_statement_timeout_ms: int = Field(default=15000, ge=0)
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # PostgreSQL's `plan_cache_mode` on every connection. Left at `auto`, it plans each prepared
    # statement's first five runs on each connection for their values before it keeps one
    # plan: the booking statement comes in five sizes on twenty connections per worker, and in
    # a ten-second burst a quarter of its runs were still planned anew (see BENCHMARKS.md).
    # Every hot statement keeps the generic plan once `auto` has tried it.
    db_plan_cache_mode: PlanCacheMode = "force_generic_plan"

    dispatcher_enabled: bool = True
    dispatcher_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    dispatcher_lease_seconds: float = Field(default=60.0, gt=1, le=3600)
    # How often each dispatcher sweeps for reminders come due (they go out within this, plus
    # the delivery): the spec promises 60 s.
    reminder_sweep_seconds: float = Field(default=5.0, gt=0, le=30)
    dispatcher_max_attempts: int = Field(default=12, ge=1, le=100)
    dispatcher_concurrency: int = Field(default=4, ge=1, le=64)
    dispatcher_backoff_base_seconds: float = Field(default=1.0, gt=0, le=600)
    dispatcher_backoff_max_seconds: float = Field(default=60.0, gt=0, le=86400)

    # Webhooks (app/services/webhooks): receivers must be public https unless these allow more.
    webhook_allow_http: bool = False
    webhook_allow_private_networks: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    # Fernet keys (comma-separated, the first encrypts) that seal the endpoints' secrets in
    # the database; unset: one generated once under DATA_DIR.
    webhook_secret_key: str | None = None

    # The waitlist (app/services/waitlist): how long a freed slot is held for the entry it is
    # offered to, and how often the matcher looks for what time frees (holds expiring, offers
    # to hand back, the booking horizon moving on); well under a minute, as offers promise.
    waitlist_offer_minutes: int = Field(default=15, ge=1, le=60)
    waitlist_sweep_seconds: float = Field(default=15.0, gt=0, le=45)

    rate_limit_per_minute: int = Field(default=0, ge=0)
    availability_cache_days: int = Field(default=40_000, ge=0, le=1_000_000)
    # Days from today each worker reads into the day cache before it serves (0: none), as
    # many as the cache holds for every active doctor, for at most the budget's seconds.
    availability_warm_days: int = Field(default=60, ge=0, le=366)
    availability_warm_seconds: float = Field(default=10.0, ge=0, le=600)

    @field_validator(
        "database_url",
        "database_read_url",
        "service_api_key",
        "default_phone_region",
        "google_calendar_delegated_admin_email",
        "rag_service_url",
        "rag_service_api_key",
        "webhook_secret_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("google_calendar_credentials_path", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("clinic_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown ISO country code {value!r}")
        return region

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("rag_service_url", "google_calendar_api_endpoint")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("service_api_key")
    @classmethod
    def _check_api_keys(cls, value: str | None) -> str | None:
        if value is not None:
            parse_api_keys(value)
        return value

    @field_validator("webhook_secret_key")
    @classmethod
    def _check_fernet_keys(cls, value: str | None) -> str | None:
        if value is not None:
            fernet_keys(value)
        return value

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)

    @cached_property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def calendar_enabled(self) -> bool:
        return (
            self.google_calendar_credentials_path is not None
            and self.google_calendar_delegated_admin_email is not None
        )

    @property
    def rag_enabled(self) -> bool:
        return self.rag_service_url is not None


def fernet_keys(value: str) -> list[bytes]:
    """WEBHOOK_SECRET_KEY's keys, each 32 url-safe base64 bytes (`Fernet.generate_key()`)."""
    keys = [key.strip().encode() for key in value.split(",") if key.strip()]
    if not keys:
        raise ValueError("must name at least one key")
    for key in keys:
        try:
            valid = len(base64.urlsafe_b64decode(key)) == 32
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("each key must be 32 url-safe base64-encoded bytes (a Fernet key)")
    return keys


def load_settings() -> Settings:
    """Build settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {variable}: {message}") from None
