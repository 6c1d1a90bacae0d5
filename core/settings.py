"""One typed settings object, read from the environment at start-up (never at import time)."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lightsms.errors import InvalidInput
from lightsms.validation import validate_sender

from .errors import ConfigError

PRODUCTION_BASE_URL = "https://www.lightsms.com/external/get/"
# The simulator's demo pair: only ever used when the base URL points at this machine.
DEMO_LOGIN = "demo"
DEMO_API_KEY = "demo-key"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "simulator"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    lightsms_login: str = ""
    lightsms_api_key: SecretStr = SecretStr("")
    lightsms_base_url: str = PRODUCTION_BASE_URL
    lightsms_sender: str | None = None
    lightsms_max_rps: float = Field(10.0, gt=0, le=1000)
    lightsms_batch_size: int = Field(50, ge=1, le=100)
    lightsms_timezone: str = "Europe/Vilnius"
    lightsms_incoming_interval: float = Field(30.0, gt=0)
    lightsms_default_region: str | None = None
    lightsms_max_parts: int = Field(10, ge=1, le=255)
    lightsms_connect_timeout: float = Field(3.05, gt=0)
    lightsms_read_timeout: float = Field(10.0, gt=0)
    # A read timeout bounds one socket read, not a reply that trickles: this bounds the whole request.
    lightsms_request_deadline: float | None = Field(None, gt=0)  # default: connect + read timeout
    # Retry policy (DESIGN.md "Outcome classes").
    lightsms_max_attempts: int = Field(8, ge=1)  # send attempts that end in "not sent" before DEAD
    lightsms_retry_window: float = Field(8.0, ge=0)  # seconds of in-task tenacity retries per attempt
    lightsms_backoff_base: float = Field(5.0, gt=0)  # due-queue backoff: base * 2**attempt, capped
    lightsms_backoff_max: float = Field(900.0, gt=0)
    lightsms_limiter_margin: float = Field(0.04, ge=0, lt=1)  # slots this much wider than 1/rate: jitter room
    lightsms_limiter_max_wait: float = Field(1.0, ge=0)  # wait this long for the limiter, then DEFER
    lightsms_pause_seconds: float = Field(300.0, gt=0)  # how long an account failure pauses sending
    lightsms_pause_recheck: float = Field(30.0, gt=0)  # paused messages look again this often
    # Leases and the sweeper.
    lightsms_lease_seconds: float = Field(120.0, gt=0)
    lightsms_requeue_after: float = Field(300.0, gt=0)  # QUEUED this long with no progress: task lost
    lightsms_sweep_interval: float = Field(10.0, gt=0)
    lightsms_due_interval: float = Field(1.0, gt=0)
    lightsms_max_schedule_days: float = Field(30.0, gt=0)
    lightsms_record_ttl_days: float = Field(45.0, gt=0)
    lightsms_worker_concurrency: int = Field(8, ge=1)
    # URLs may carry passwords: secrets, so that no repr or log shows them.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    celery_broker_url: SecretStr | None = None

    @field_validator("lightsms_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("lightsms_default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}; use a two-letter code such as LT")
        return value.upper() if value else None

    @field_validator("lightsms_sender")
    @classmethod
    def _valid_sender(cls, value: str | None) -> str | None:
        if value:
            try:
                validate_sender(value)
            except InvalidInput as exc:
                raise ValueError(exc.reason) from None
        return value or None

    @field_validator("lightsms_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _credentials(self) -> Settings:
        local = urlsplit(self.lightsms_base_url).hostname in LOCAL_HOSTS
        if not self.lightsms_login:
            if not local:
                raise ValueError("LIGHTSMS_LOGIN: required when LIGHTSMS_BASE_URL is not local")
            object.__setattr__(self, "lightsms_login", DEMO_LOGIN)
        if not self.lightsms_api_key.get_secret_value():
            if not local:
                raise ValueError("LIGHTSMS_API_KEY: required when LIGHTSMS_BASE_URL is not local")
            object.__setattr__(self, "lightsms_api_key", SecretStr(DEMO_API_KEY))
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_batch(self) -> Settings:
        # A lease that ran out while its worker was still sending would let the sweeper act on it. One
        # attempt: the retry window and its last backoff, then up to three requests (a clock refresh,
        # the send, and its re-signed repeat after a refused timestamp), a limiter wait and a margin.
        one_request = self.request_deadline
        longest = self.lightsms_retry_window + 2 + 3 * one_request + self.lightsms_limiter_max_wait + 5
        if self.lightsms_lease_seconds < longest:
            raise ValueError(
                f"LIGHTSMS_LEASE_SECONDS: must be at least {longest:g} with these timeouts and request deadline"
            )
        return self

    @model_validator(mode="after")
    def _idempotency_outlasts_a_schedule(self) -> Settings:
        # An idempotency key lives as long as a record; it must still answer when a message scheduled
        # as far ahead as allowed is finally sent.
        if self.lightsms_record_ttl_days < self.lightsms_max_schedule_days + 1:
            raise ValueError("LIGHTSMS_RECORD_TTL_DAYS: must exceed LIGHTSMS_MAX_SCHEDULE_DAYS by at least a day")
        return self

    @property
    def request_deadline(self) -> float:
        """The longest any one LightSMS request may take, whatever the server does."""
        if self.lightsms_request_deadline is not None:
            return self.lightsms_request_deadline
        return self.lightsms_connect_timeout + self.lightsms_read_timeout

    @property
    def store_url(self) -> str:
        """REDIS_URL, revealed: only for building a client."""
        return self.redis_url.get_secret_value()

    @property
    def broker_url(self) -> str:
        """CELERY_BROKER_URL (or REDIS_URL), revealed: only for Celery's broker_url, which Celery masks."""
        broker = self.celery_broker_url.get_secret_value() if self.celery_broker_url else ""
        return broker or self.store_url


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises ConfigError naming the variable, and nothing else."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        message = str(first.get("msg", "invalid"))
        if loc:
            raise ConfigError(f"{str(loc[0]).upper()}: {message}") from None
        # model-level checks already name their variable
        raise ConfigError(message.removeprefix("Value error, ")) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()


