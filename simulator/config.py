"""Start-up configuration of the simulator and the faults/variants that tests switch at run time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["DEFAULT_SENDERS", "Faults", "SimConfig", "Variants", "merge_faults"]

DEFAULT_SENDERS: dict[str, str] = {"LightSMS": "completed", "Pending": "pending"}

ERROR_SHAPES = ("top", "empty_key", "phone")
EMPTY_SHAPES = ("{}", "19", "")
STATUS_WORDS = ("delivered", "deliver")
BLACKLIST_SHAPES = ("flat", "keyed", "placeholder")


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """What the simulator starts with, and what POST /_sim/reset returns to."""

    login: str = "demo"
    api_key: str = field(default="demo-key", repr=False)  # a secret, even in a simulator
    balance: Decimal | float | str = Decimal("100")
    price: Decimal | float | str = Decimal("0.0144")
    currency: str = "EUR"
    senders: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SENDERS))
    timezone: str = "Europe/Vilnius"
    delivery_seconds: float = 2.0
    batch_limit: int = 50
    forbidden_words: tuple[str, ...] = ()
    timestamp_window: float = 10.0
    seed: int | None = None  # seeds the fault lottery; None = nondeterministic
    verbose: bool = False


@dataclass(kw_only=True)
class Variants:
    """Response shapes the real API has been seen (or documented) to use; the client must take them all."""

    int_codes: bool = False
    error_shape: str = "top"
    empty_shape: str = "{}"
    status_words: str = "delivered"
    blacklist_shape: str = "flat"

    def validate(self) -> None:
        _check_choice("error_shape", self.error_shape, ERROR_SHAPES)
        _check_choice("empty_shape", self.empty_shape, EMPTY_SHAPES)
        _check_choice("status_words", self.status_words, STATUS_WORDS)
        _check_choice("blacklist_shape", self.blacklist_shape, BLACKLIST_SHAPES)
        if not isinstance(self.int_codes, bool):
            raise ValueError("int_codes must be a boolean")


@dataclass(kw_only=True)
class Faults:
    """Injected misbehaviour. Rates are probabilities in [0, 1] drawn once per matching request."""

    latency_ms: float = 0
    http_500_rate: float = 0
    http_503_rate: float = 0
    http_429_rate: float = 0
    stall_rate: float = 0
    stall_seconds: float = 30
    reset_rate: float = 0
    # Processed normally, then the whole reply (status line, headers, body) written one byte at a
    # time, trickle_interval seconds apart, until done, the client hangs up or the server stops.
    trickle_rate: float = 0
    trickle_interval: float = 0.3
    # When reply_body is set, matching requests are processed normally but answered with exactly
    # this body, status and Content-Type (also when trickled or stalled): any hostile reply shape
    # after a real accept.
    reply_body: str | None = None
    reply_status: int = 200
    reply_content_type: str = "application/json"
    endpoints: list[str] = field(default_factory=lambda: ["send"])
    # remaining matching requests the rate faults and reply_body apply to; None = all
    count: int | None = None
    phone_errors: dict[str, int] = field(default_factory=dict)
    delivery_outcomes: dict[str, str] = field(default_factory=dict)
    max_rps: float | None = None
    clock_skew: float = 0
    variants: Variants = field(default_factory=Variants)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "variants"}
        out["variants"] = {f.name: getattr(self.variants, f.name) for f in fields(self.variants)}
        return out


_RATE_KEYS = ("http_500_rate", "http_503_rate", "http_429_rate", "stall_rate", "reset_rate", "trickle_rate")
_FLOAT_KEYS = ("latency_ms", "stall_seconds", "clock_skew", "trickle_interval", *_RATE_KEYS)
MAX_TRICKLE_INTERVAL = 60.0
# Keys of POST /_sim/faults that change the account rather than the fault state.
ACCOUNT_KEYS = ("balance", "price", "forbidden_words", "batch_limit", "senders")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}")


def _is_header_value(value: str) -> bool:
    return all(" " <= ch <= "~" or "\xa0" <= ch <= "\xff" or ch == "\t" for ch in value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)


def merge_faults(current: Faults, update: Mapping[str, Any]) -> Faults:
    """A new Faults with `update` merged in; raises ValueError naming the first bad key."""
    values = current.as_json()
    variants = dict(values.pop("variants"))
    for key, value in update.items():
        if key in ACCOUNT_KEYS:
            continue
        if key == "variants":
            if not isinstance(value, Mapping):
                raise ValueError("variants must be an object")
            unknown = set(value) - set(variants)
            if unknown:
                raise ValueError(f"unknown variant {sorted(unknown)[0]!r}")
            variants.update(value)
        elif key in _FLOAT_KEYS:
            values[key] = _number(key, value)
            if key in _RATE_KEYS and not 0 <= values[key] <= 1:
                raise ValueError(f"{key} must be between 0 and 1")
            if key == "trickle_interval" and not 0 <= values[key] <= MAX_TRICKLE_INTERVAL:
                raise ValueError(f"trickle_interval must be between 0 and {MAX_TRICKLE_INTERVAL:g} seconds")
        elif key == "reply_body":
            if value is not None and not isinstance(value, str):
                raise ValueError("reply_body must be a string or null")
            values[key] = value
        elif key == "reply_status":
            if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
                raise ValueError("reply_status must be an integer HTTP status (100-599)")
            values[key] = value
        elif key == "reply_content_type":
            if not isinstance(value, str) or not value or not _is_header_value(value):
                raise ValueError("reply_content_type must be a non-empty header value (printable latin-1)")
            values[key] = value
        elif key in ("count", "max_rps"):
            values[key] = None if value is None else _number(key, value)
            if key == "count" and values[key] is not None:
                values[key] = int(values[key])
        elif key == "endpoints":
            if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
                raise ValueError("endpoints must be a list of names")
            values[key] = [e.removesuffix(".php") for e in value]
        elif key == "phone_errors":
            values[key] = {str(p): int(c) for p, c in dict(value).items()}
        elif key == "delivery_outcomes":
            values[key] = {str(p): str(w) for p, w in dict(value).items()}
        else:
            raise ValueError(f"unknown fault {key!r}")
    merged = Faults(**values, variants=Variants(**variants))
    merged.variants.validate()
    return merged


def to_decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
