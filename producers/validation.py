"""Checks at the door: every rule raises InvalidInput naming the field, before anything is stored."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from core.settings import CoreSettings
from core.states import OnUnknown, Priority
from lightsms.errors import InvalidInput
from lightsms.phones import normalize_phone
from lightsms.validation import validate_phones, validate_sender, validate_text

SEND_AT_GRACE = 5.0  # a send_at this close to now (clock jitter) means "now"
MAX_METADATA_BYTES = 4096
MAX_IDEMPOTENCY_KEY = 200

_Choice = TypeVar("_Choice", OnUnknown, Priority)


class OptedOutError(InvalidInput):
    """The recipient is on the opt-out list."""


@dataclass(frozen=True, slots=True)
class Options:
    """The validated options shared by every recipient of one send call."""

    text: str
    sender: str
    send_at: float | None  # None: now (or LightSMS schedules it: see sending_time)
    sending_time: str | None  # "YYYY-MM-DD HH:MM" in the account's timezone, when LightSMS schedules it
    valid_until: float | None
    idempotency_key: str | None
    on_unknown: OnUnknown
    priority: Priority
    metadata: dict[str, Any]
    opt_out_confirmation: bool = False  # the STOP confirmation: sent although the number is opted out


def check_options(
    settings: CoreSettings,
    *,
    now: float,
    text: object,
    sender: str | None,
    send_at: datetime | float | None,
    idempotency_key: str | None,
    valid_for: timedelta | float | None,
    on_unknown: str,
    priority: str,
    metadata: Mapping[str, Any] | None,
    provider_schedule: bool = False,
    opt_out_confirmation: bool = False,
) -> Options:
    if not isinstance(text, str):
        raise InvalidInput("text", f"must be a string, not {type(text).__name__}")
    validate_text(text, max_parts=settings.lightsms_max_parts)
    chosen_sender = sender if sender is not None else settings.lightsms_sender
    if not chosen_sender:
        raise InvalidInput("sender", "no sender given and LIGHTSMS_SENDER is not set")
    validate_sender(chosen_sender)
    when = _send_at(send_at, now=now, max_days=settings.lightsms_max_schedule_days)
    sending_time = None
    if provider_schedule:
        if when is None:
            raise InvalidInput("provider_schedule", "needs a send_at in the future")
        sending_time = _account_minute(when, settings.lightsms_timezone)
    if not isinstance(opt_out_confirmation, bool):  # a truthy string must not waive an opt-out by accident
        raise InvalidInput("opt_out_confirmation", "must be True or False")
    return Options(
        text=text,
        sender=chosen_sender,
        send_at=None if provider_schedule else when,
        sending_time=sending_time,
        valid_until=_valid_until(valid_for, start=when or now),
        idempotency_key=_idempotency_key(idempotency_key),
        on_unknown=_choice("on_unknown", on_unknown, OnUnknown),
        priority=_choice("priority", priority, Priority),
        metadata=_metadata(metadata),
        opt_out_confirmation=opt_out_confirmation,
    )


def check_phones(phones: Sequence[object], *, default_region: str | None) -> list[str]:
    """lightsms's phone-list check, for send_many: a list of strings (a lone string is a mistake here)."""
    if isinstance(phones, str) or not isinstance(phones, Sequence):
        raise InvalidInput("phones", "must be a list of phone numbers")
    for i, raw in enumerate(phones):
        _require_string(raw, field=f"phones[{i}]")
    return validate_phones(phones, default_region=default_region)


def check_phone(raw: object, *, default_region: str | None, field: str = "phone") -> str:
    _require_string(raw, field=field)
    try:
        return normalize_phone(raw, default_region=default_region)
    except InvalidInput as exc:
        raise InvalidInput(field, exc.reason) from None


def _require_string(raw: object, *, field: str) -> None:
    """A number given as an int has lost any leading 0 or 00: the producers take strings only."""
    if not isinstance(raw, str):
        raise InvalidInput(field, f"must be a string, not {type(raw).__name__}")


def _send_at(value: datetime | float | None, *, now: float, max_days: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput("send_at", "must be timezone-aware (a naive datetime is ambiguous)")
        when = value.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        when = float(value)
    else:
        raise InvalidInput("send_at", "must be an aware datetime or a unix timestamp")
    if when < now - SEND_AT_GRACE:
        raise InvalidInput("send_at", "is in the past")
    if when > now + max_days * 86400:
        raise InvalidInput("send_at", f"is more than {max_days:g} days ahead")
    return when if when > now else None


def _account_minute(when: float, timezone: str) -> str:
    """LightSMS's sendingTime: minutes in the account's timezone, rounded up so it is never early."""
    local = datetime.fromtimestamp(math.ceil(when / 60) * 60, tz=ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M")


def _valid_until(value: timedelta | float | None, *, start: float) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise InvalidInput("valid_for", "must be a positive duration")
    return start + float(seconds)


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("idempotency_key", "must be a non-empty string")
    if len(value) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput("idempotency_key", f"longer than {MAX_IDEMPOTENCY_KEY} characters")
    return value


def _choice(field: str, value: str, allowed: type[_Choice]) -> _Choice:
    try:
        return allowed(value)
    except ValueError:
        values = ", ".join(member.value for member in allowed)
        raise InvalidInput(field, f"{value!r} is not one of {values}") from None


def _metadata(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("metadata", "must be a mapping")
    try:
        encoded = json.dumps(dict(value), separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("metadata", f"is not JSON-serialisable: {exc}") from None
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInput("metadata", f"larger than {MAX_METADATA_BYTES} bytes as JSON")
    return dict(value)
