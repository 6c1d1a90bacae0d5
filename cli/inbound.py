"""`lightsms-queue inbound rejected`: incoming SMS LightSMS listed that the poller could not read.

The poller (worker/inbound.py) keeps the newest of them on a Redis list, newest first, each a JSON
record {id, reason, fields: {date, sender, phone, prefix, text}, at}. Phone numbers are masked
unless --show-phones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from core import keys

from .context import echo_json, friendly_errors, json_option, producer, show_phones_option, shown_phone

_PHONE_FIELDS = ("sender", "phone")


@click.group()
def inbound() -> None:
    """Incoming SMS: what LightSMS sent that could not be read."""


@inbound.command()
@json_option
@show_phones_option
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="newest N only")
@friendly_errors
def rejected(as_json: bool, show_phones: bool, limit: int) -> None:
    """Incoming SMS set aside as malformed, newest first, with the reason."""
    raw = producer().store.redis.lrange(keys.INBOUND_REJECTED, 0, limit - 1)
    records = [_shown(_read(item), show_phones) for item in raw]
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("no rejected incoming SMS")
    for record in records:
        click.echo(_row(record))


def _read(item: bytes | str) -> dict[str, Any]:
    try:
        record = json.loads(item)
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"id": "?", "reason": "an unreadable entry", "fields": {}}


def _shown(record: dict[str, Any], show_phones: bool) -> dict[str, Any]:
    fields = dict(record.get("fields") or {})
    for name in _PHONE_FIELDS:
        if isinstance(fields.get(name), str) and fields[name]:
            fields[name] = shown_phone(fields[name], show_phones)
    return {**record, "fields": fields}


def _row(record: dict[str, Any]) -> str:
    at = record.get("at")
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if isinstance(at, int | float) else "?"
    fields = record["fields"]
    shown = "  ".join(f"{name}={fields[name]!r}" for name in ("date", "sender", "phone", "text") if name in fields)
    return f"{when}  {record.get('id') or '(no id)':<24} {record.get('reason', '')}: {shown}"
