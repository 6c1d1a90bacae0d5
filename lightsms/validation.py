"""Input checks run before any HTTP request: a bad request is refused here, not billed or half-sent."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

from .errors import InvalidInput
from .phones import mask_phone, normalize_phone
from .text import SmsParts, sms_parts

__all__ = [
    "format_incoming_window",
    "validate_sender",
    "validate_sending_time",
    "validate_sms_ids",
    "validate_phones",
    "validate_text",
]

# LightSMS sender rules: alphanumeric 3-11 of A-Z a-z 0-9 space hyphen starting with a letter,
# or numeric up to 15 digits.
_ALPHA_SENDER = re.compile(r"[A-Za-z][A-Za-z0-9 \-]{2,10}")
_NUMERIC_SENDER = re.compile(r"[0-9]{1,15}")
_SENDING_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_DAY = "%Y-%m-%d"
_MINUTE = "%Y-%m-%d %H:%M"
_SECOND = "%Y-%m-%d %H:%M:%S"


def validate_sender(sender: object) -> str:
    if not isinstance(sender, str) or not sender:
        raise InvalidInput("sender", "a sender name is required")
    if _NUMERIC_SENDER.fullmatch(sender) or _ALPHA_SENDER.fullmatch(sender):
        return sender
    if sender.isdigit():
        raise InvalidInput("sender", f"numeric sender {sender!r} is longer than 15 digits")
    raise InvalidInput(
        "sender",
        f"{sender!r} is not a valid sender: 3-11 characters of A-Z, a-z, 0-9, space or hyphen "
        "starting with a letter, or up to 15 digits",
    )


def validate_text(text: object, *, max_parts: int) -> SmsParts:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text", "the message text is empty")
    parts = sms_parts(text)
    if parts.parts > max_parts:
        raise InvalidInput("text", f"{parts.units} {parts.encoding} units take {parts.parts} parts, max {max_parts}")
    return parts


def validate_phones(
    phones: Iterable[object] | str, *, batch_limit: int | None = None, default_region: str | None = None,
    checked: bool = False,
) -> list[str]:  # fmt: skip
    """Normalised phones in input order; a single string is one phone. The one phone-list check:
    the client and the producers (producers.validation.check_phones) both use it.

    An invalid entry is named by its index (field "phones[3]"); so is the second of two entries that
    are the same number once normalised. `batch_limit` None: no limit on the count. `checked`: the
    caller vouches that the entries are already as normalize_phone returns them, and an entry of
    digits only is taken as it is (phonenumbers is not run again); anything else is checked.
    """
    items: list[object] = [phones] if isinstance(phones, str | int) else list(phones)
    if not items:
        raise InvalidInput("phones", "at least one phone number is required")
    if batch_limit is not None and len(items) > batch_limit:
        raise InvalidInput("phones", f"{len(items)} phone numbers, max {batch_limit} per request")
    normalized: list[str] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(items):
        try:
            if checked and isinstance(raw, str) and raw.isascii() and raw.isdigit():
                phone = raw
            else:
                phone = normalize_phone(raw, default_region=default_region)
        except InvalidInput as error:
            raise InvalidInput(f"phones[{index}]", error.reason) from None
        if phone in first_seen:
            raise InvalidInput(
                f"phones[{index}]",
                f"phones[{first_seen[phone]}] and phones[{index}] are the same number {mask_phone(phone)}",
            )
        first_seen[phone] = index
        normalized.append(phone)
    return normalized


def validate_sending_time(value: object) -> str | None:
    """None, a naive datetime or "YYYY-MM-DD HH:MM" -> the "YYYY-MM-DD HH:MM" LightSMS expects.

    The value is read in the account's timezone (undocumented by LightSMS), so an aware datetime
    is refused rather than silently reinterpreted.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise InvalidInput("sending_time", "give a naive datetime in the account's timezone")
        return value.strftime(_MINUTE)
    if isinstance(value, str) and _SENDING_TIME.fullmatch(value):
        try:
            datetime.strptime(value, _MINUTE)
        except ValueError:
            raise InvalidInput("sending_time", f"{value!r} is not a real date and time") from None
        return value
    raise InvalidInput("sending_time", f"expected a datetime or 'YYYY-MM-DD HH:MM', got {value!r}")


def validate_sms_ids(ids: Iterable[object] | str) -> list[str]:
    """LightSMS message ids (22 digits, larger than int64) as strings, in input order, no repeats."""
    items: list[object] = [ids] if isinstance(ids, str | int) else list(ids)
    if not items:
        raise InvalidInput("ids", "at least one SMS id is required")
    result: list[str] = []
    for index, raw in enumerate(items):
        text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
        if not (text.isdigit() and text.isascii()):
            raise InvalidInput(f"ids[{index}]", f"{raw!r} is not a numeric SMS id")
        if text not in result:
            result.append(text)
    return result


def format_incoming_window(date_: object, start: object, end: object) -> dict[str, str]:
    """incoming.php parameters: {"date": day} or {"from": ..., "to": ...}."""
    if date_ is not None:
        if start is not None or end is not None:
            raise InvalidInput("date", "give either date or start and end, not both")
        return {"date": _format_day(date_)}
    if start is None and end is None:
        raise InvalidInput("date", "give a date, or start and end")
    if start is None:
        raise InvalidInput("start", "start is required with end")
    if end is None:
        raise InvalidInput("end", "end is required with start")
    begin, finish = _to_datetime("start", start, end_of_day=False), _to_datetime("end", end, end_of_day=True)
    if finish < begin:
        raise InvalidInput("end", "end is before start")
    return {"from": begin.strftime(_SECOND), "to": finish.strftime(_SECOND)}


def _format_day(value: object) -> str:
    if isinstance(value, date):  # a datetime is a date too: its day is meant
        return value.strftime(_DAY)
    if isinstance(value, str):
        try:
            return datetime.strptime(value, _DAY).strftime(_DAY)
        except ValueError:
            pass
    raise InvalidInput("date", f"expected a date or 'YYYY-MM-DD', got {value!r}")


def _to_datetime(field: str, value: object, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise InvalidInput(field, "give a naive datetime in the account's timezone")
        return value.replace(microsecond=0)
    if isinstance(value, date):
        clock = (23, 59, 59) if end_of_day else (0, 0, 0)
        return datetime(value.year, value.month, value.day, *clock)
    if isinstance(value, str):
        for layout in (_SECOND, _MINUTE):
            try:
                return datetime.strptime(value, layout)
            except ValueError:
                continue
        try:
            return _to_datetime(field, datetime.strptime(value, _DAY).date(), end_of_day=end_of_day)
        except ValueError:
            pass
    raise InvalidInput(field, f"expected a datetime or 'YYYY-MM-DD HH:MM:SS', got {value!r}")
