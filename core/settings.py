"""Settings in two layers, read from the environment at start-up (never at import time).

    CoreSettings    what every process needs: Redis, the broker, batch size, region, parts, timezone,
                    sender, schedule bounds, TTLs. A producer reads nothing else.
    Settings        CoreSettings + what a process that calls LightSMS needs on top: credentials, base
                    URL, timeouts, rate, limiter, retry policy, pause, lease, upkeep intervals.

Each class reads the environment variables that name its fields (in any case) and no other: a
producer's CoreSettings never reads LIGHTSMS_API_KEY's value, not even in passing (pydantic-settings
would read every variable's value to find its own). Values passed to the constructor win over the
environment.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from lightsms.client import DEFAULT_BASE_URL as PRODUCTION_BASE_URL
from lightsms.errors import InvalidInput
from lightsms.validation import validate_sender

from .errors import ConfigError
from .stack_file import CONNECTION_VARIABLES, read_stack_file

__all__ = [
    "DEMO_API_KEY",
    "DEMO_LOGIN",
    "LOCAL_HOSTS",
    "PRODUCTION_BASE_URL",
    "ConfigError",
    "CoreSettings",
    "Settings",
    "get_core_settings",
    "get_settings",
    "load_core_settings",
    "load_settings",
]

# The simulator's demo pair: only ever used when the base URL points at this machine.
DEMO_LOGIN = "demo"
DEMO_API_KEY = "demo-key"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "simulator"})
REDIS_SCHEMES = ("redis", "rediss", "unix")
REDIS_BROKER_SCHEMES = ("redis", "rediss", "sentinel", "redis+socket")  # kombu's Redis transports
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class _FromEnvironment(BaseModel):
    """A frozen model whose fields default to the environment variables that name them."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_environment(type(self)), **values})


def _environment(model: type[BaseModel]) -> dict[str, str]:
    """The values of the variables naming the model's fields, matched in any case; only their names
    are read of the other variables. Below them, a running `make run` stack's file (stack_file.py)."""
    fields = model.model_fields
    found: dict[str, str] = {}
    configured = any(name.upper() in CONNECTION_VARIABLES for name in os.environ)
    for source in ({} if configured else read_stack_file(), os.environ):
        for name in list(source):
            if name.lower() in fields:
                found[name.lower()] = source[name]
    return found


class CoreSettings(_FromEnvironment):
    """What every process needs, producers included: no LightSMS credentials, no base URL."""

    lightsms_sender: str | None = None
    lightsms_batch_size: int = Field(50, ge=1, le=100)
    lightsms_timezone: str = "Europe/Vilnius"
    lightsms_default_region: str | None = None
    lightsms_max_parts: int = Field(10, ge=1, le=255)
    lightsms_max_schedule_days: float = Field(30.0, gt=0)
    lightsms_record_ttl_days: float = Field(45.0, gt=0)
    lightsms_log_format: Literal["text", "json"] = "text"  # worker, beat and consumers (--log-format wins)
    # Consumers (consumers/) and the keyword router.
    lightsms_consumer_max_retries: int = Field(3, ge=0, le=1000)  # a failing event's redeliveries, then .dead
    lightsms_consumer_prefetch: int = Field(4, ge=1, le=1000)  # RabbitMQ; on Redis a consumer holds one
    # Redis broker: a consumer silent this long is taken for dead, and its held event given back.
    lightsms_consumer_dead_after: float = Field(30.0, ge=1.0, le=3600.0)
    lightsms_local_stop_words: str = "СТОП"  # comma-separated, besides STOP, STOPALL, UNSUBSCRIBE ...
    lightsms_stop_reply: str = "You will get no more messages from us. Reply START to subscribe again."
    lightsms_start_reply: str = "You are subscribed again. Reply STOP to unsubscribe."
    lightsms_help_text: str = "Reply STOP to unsubscribe, START to subscribe again."
    lightsms_auto_reply_period: float = Field(3600.0, ge=0)  # at most one automatic reply per number per period
    lightsms_add2stop: bool = True  # STOP also adds the number to LightSMS's own stop list (add2stop.php)
    # URLs may carry passwords: secrets, so that no repr or log shows them.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    celery_broker_url: SecretStr | None = None
    # Redis Sentinel (core/redis_client.py): the store's master is found through these sentinels
    # ("host:port,host:port"); REDIS_URL then gives only its password and database.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr | None = None  # the sentinels' own password, if they have one
    # Extra transport options for the broker, a JSON object (e.g. {"master_name": "mymaster"} for a
    # sentinel:// CELERY_BROKER_URL); may carry passwords, so a secret too.
    celery_broker_transport_options: SecretStr | None = None

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

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        # Never echo the URL: it may carry a password.
        scheme = _SCHEME.match(value.get_secret_value())
        if scheme is None or scheme.group(1).lower() not in REDIS_SCHEMES:
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("celery_broker_url")
    @classmethod
    def _broker_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        # Empty means "the same as REDIS_URL". Without a scheme, Celery would fall back to amqp:// on
        # localhost without a word.
        if value is not None and value.get_secret_value() and not _SCHEME.match(value.get_secret_value()):
            raise ValueError("must be a URL with a scheme, such as redis://host:6379/0 or amqp://host//")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _host_ports(cls, value: str | None) -> str | None:
        if value:
            for address in value.split(","):
                host, _, port = address.strip().rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError("must be host:port[,host:port...], such as 10.0.0.1:26379,10.0.0.2:26379")
        return value or None

    @field_validator("celery_broker_transport_options")
    @classmethod
    def _json_object(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            try:
                parsed = json.loads(value.get_secret_value())
            except ValueError:
                raise ValueError("must be a JSON object, such as {\"master_name\": \"mymaster\"}") from None
            if not isinstance(parsed, dict):
                raise ValueError("must be a JSON object, such as {\"master_name\": \"mymaster\"}")
        return value

    @model_validator(mode="after")
    def _idempotency_outlasts_a_schedule(self) -> CoreSettings:
        # An idempotency key lives as long as a record; it must still answer when a message scheduled
        # as far ahead as allowed is finally sent.
        if self.lightsms_record_ttl_days < self.lightsms_max_schedule_days + 1:
            raise ValueError("LIGHTSMS_RECORD_TTL_DAYS: must exceed LIGHTSMS_MAX_SCHEDULE_DAYS by at least a day")
        return self

    @property
    def store_url(self) -> str:
        """REDIS_URL, revealed: only for building a client."""
        return self.redis_url.get_secret_value()

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs; [] when the store is a plain Redis."""
        pairs = [address.strip().rpartition(":") for address in (self.redis_sentinels or "").split(",") if address]
        return [(host, int(port)) for host, _, port in pairs]

    @property
    def broker_url(self) -> str:
        """CELERY_BROKER_URL (or the store's Redis: through the sentinels when there are some),
        revealed: only for Celery's broker_url, which Celery masks."""
        broker = self.celery_broker_url.get_secret_value() if self.celery_broker_url else ""
        if broker:
            return broker
        if self.sentinels:
            store = urlsplit(self.store_url)
            auth = f"{store.username or ''}:{store.password}@" if store.password else ""
            db = store.path.strip("/") or "0"
            return ";".join(f"sentinel://{auth}{host}:{port}/{db}" for host, port in self.sentinels)
        return self.store_url

    @property
    def broker_on_redis(self) -> bool:
        return self.broker_url.split(":", 1)[0].lower() in REDIS_BROKER_SCHEMES

    @property
    def broker_transport_options(self) -> dict[str, Any]:
        """Kombu transport options for the broker: ours, the sentinel's when the broker is the store's
        Redis through its sentinels, then CELERY_BROKER_TRANSPORT_OPTIONS on top."""
        # Far above the longest task (lease + limits): a shorter one redelivers running tasks (Redis).
        options: dict[str, Any] = {"visibility_timeout": 3600}
        if self.sentinels and not self.celery_broker_url:
            options["master_name"] = self.redis_sentinel_master
            if self.redis_sentinel_password:
                options["sentinel_kwargs"] = {"password": self.redis_sentinel_password.get_secret_value()}
        if self.celery_broker_transport_options:
            options.update(json.loads(self.celery_broker_transport_options.get_secret_value()))
        return options


class Settings(CoreSettings):
    """CoreSettings + what a process that calls LightSMS needs: workers, the CLI's provider commands."""

    lightsms_login: str = ""
    lightsms_api_key: SecretStr = SecretStr("")
    lightsms_base_url: str = PRODUCTION_BASE_URL
    lightsms_max_rps: float = Field(10.0, gt=0, le=1000)
    # The pollers (worker/inbound.py, worker/delivery.py), run by beat.
    lightsms_incoming_interval: float = Field(30.0, gt=0)
    lightsms_incoming_overlap: float = Field(120.0, ge=0)  # each poll reads this far behind the cursor again
    lightsms_incoming_backfill: float = Field(3600.0, ge=0, le=30 * 86400)  # the first poll reads this far back
    lightsms_status_interval: float = Field(10.0, gt=0)  # how often beat runs poll_status
    # Seconds after sending at which a SENT message's status is asked; after the last, every hour.
    lightsms_status_schedule: str = "60,300,900,3600"
    lightsms_status_deadline: float = Field(72 * 3600.0, gt=0)  # then it stays as it is, with a note
    lightsms_connect_timeout: float = Field(3.05, gt=0)
    lightsms_read_timeout: float = Field(10.0, gt=0)
    # A read timeout bounds one socket read, not a reply that trickles: this bounds the whole request.
    lightsms_request_deadline: float | None = Field(None, gt=0)  # default: connect + read timeout
    # Retry policy (DESIGN.md "Outcome classes").
    lightsms_max_attempts: int = Field(8, ge=1)  # send attempts that end in "not sent" before DEAD
    lightsms_retry_window: float = Field(8.0, ge=0)  # seconds of in-task tenacity retries per attempt
    lightsms_backoff_base: float = Field(5.0, gt=0)  # due-queue backoff: base * 2**attempt, capped
    lightsms_backoff_max: float = Field(900.0, gt=0)
    lightsms_limiter_margin: float = Field(0.02, ge=0, lt=1)  # slots this much wider than 1/rate: few wait
    lightsms_limiter_max_wait: float = Field(1.0, ge=0)  # wait this long for the limiter, then DEFER
    lightsms_pause_seconds: float = Field(300.0, gt=0)  # how long an account failure pauses sending
    lightsms_pause_recheck: float = Field(30.0, gt=0)  # paused messages look again this often
    # Leases and the sweeper.
    # Renewed every third of itself while its worker works on the batch (worker/leases.py): short, so
    # that a killed worker's messages are settled within about a lease and a sweep.
    lightsms_lease_seconds: float = Field(30.0, ge=10)
    lightsms_requeue_after: float = Field(30.0, gt=0)  # QUEUED this long with no progress: task lost
    lightsms_sweep_interval: float = Field(10.0, gt=0)
    lightsms_due_interval: float = Field(1.0, gt=0)
    # Threads wait on LightSMS most of the time: at a real provider's ~100 ms, 32 threads held a worker
    # to 297 msg/s against 597 at 0 ms; 64 reach what its CPU allows (python -m bench e2e latency: 498
    # at 100 ms, 589 at 0 ms).
    lightsms_worker_concurrency: int = Field(64, ge=1)

    @field_validator("lightsms_status_schedule")
    @classmethod
    def _rising_seconds(cls, value: str) -> str:
        try:
            steps = [float(part) for part in value.split(",")]
        except ValueError:
            raise ValueError("must be comma-separated seconds, such as 60,300,900,3600") from None
        if not all(0 < step < float("inf") for step in steps) or steps != sorted(set(steps)):
            raise ValueError("must be positive seconds in rising order, such as 60,300,900,3600")
        return value

    @model_validator(mode="after")
    def _deadline_after_the_first_check(self) -> Settings:
        if self.lightsms_status_deadline <= self.status_schedule[0]:
            raise ValueError("LIGHTSMS_STATUS_DEADLINE: must be later than the first LIGHTSMS_STATUS_SCHEDULE step")
        return self

    @property
    def status_schedule(self) -> tuple[float, ...]:
        """LIGHTSMS_STATUS_SCHEDULE as seconds after sending, rising."""
        return tuple(float(part) for part in self.lightsms_status_schedule.split(","))

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
    def _lease_outlasts_a_request(self) -> Settings:
        # The worker renews a lease every third of it while the batch is in hand, so a batch may take
        # longer than a lease; but one request (with its limiter wait) must fit in one, with a margin,
        # so that a renewal missed during a Redis blip cannot let the sweeper act mid-request.
        longest = self.request_deadline + self.lightsms_limiter_max_wait + 5
        if self.lightsms_lease_seconds < longest:
            raise ValueError(
                f"LIGHTSMS_LEASE_SECONDS: must be at least {longest:g} with this request deadline and limiter wait"
            )
        return self

    @property
    def request_deadline(self) -> float:
        """The longest any one LightSMS request may take, whatever the server does."""
        if self.lightsms_request_deadline is not None:
            return self.lightsms_request_deadline
        return self.lightsms_connect_timeout + self.lightsms_read_timeout


_T = TypeVar("_T", bound=CoreSettings)


def _load(cls: type[_T], overrides: dict[str, object]) -> _T:
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if loc:
            raise ConfigError(f"{str(loc[0]).upper()}: {message}") from None
        # model-level checks already name their variable
        raise ConfigError(message) from None


def load_core_settings(**overrides: object) -> CoreSettings:
    """What every process reads; a bad value raises ConfigError naming the variable, and nothing else."""
    return _load(CoreSettings, overrides)


def load_settings(**overrides: object) -> Settings:
    """Everything a LightSMS-calling process reads; a bad value raises ConfigError naming the variable."""
    return _load(Settings, overrides)


@functools.cache
def get_core_settings() -> CoreSettings:
    return load_core_settings()


@functools.cache
def get_settings() -> Settings:
    return load_settings()
