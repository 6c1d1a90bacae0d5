"""`lightsms-queue optout list|add|remove|check`: the local opt-out list (sms:optout).

Producers refuse these numbers and workers mark their messages SUPPRESSED without calling LightSMS.
This list is ours only: LightSMS keeps a stop list of its own (add2stop.php adds to it; it can be
emptied in the LightSMS panel only, there is no API), and `remove` does not touch it.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from core import keys
from core.redis_client import reply_text
from lightsms.errors import InvalidInput
from lightsms.phones import mask_phone, normalize_phone

from .context import (
    core_settings,
    echo_json,
    fail,
    friendly_errors,
    json_option,
    producer,
    show_phones_option,
    shown_phone,
)

LIGHTSMS_NOTE = ("note: LightSMS's own stop list is unchanged (it has no API to remove a number): "
                 "if add2stop.php put a number there, remove it in the LightSMS panel too")  # fmt: skip


def _normalized(phones: Sequence[str]) -> list[str]:
    """Every phone in digits-only international form (LIGHTSMS_DEFAULT_REGION for national ones);
    exit 2 naming the first bad one, before anything is changed."""
    region = core_settings().lightsms_default_region
    found = []
    for position, raw in enumerate(phones, start=1):
        try:
            found.append(normalize_phone(raw, default_region=region))
        except InvalidInput as exc:
            fail(f"PHONE {position} ({mask_phone(raw)}): {exc.reason}", code=2)
    return found


@click.group()
def optout() -> None:
    """The local opt-out list: producers refuse these numbers, workers never send to them."""


@optout.command("list")
@json_option
@show_phones_option
@friendly_errors
def list_(as_json: bool, show_phones: bool) -> None:
    """Every opted-out number (masked unless --show-phones)."""
    phones = sorted(reply_text(p) for p in producer().store.redis.smembers(keys.OPT_OUT))
    shown = [shown_phone(p, show_phones) for p in phones]
    if as_json:
        echo_json(shown)
        return
    for phone in shown:
        click.echo(phone)


@optout.command()
@click.argument("phones", nargs=-1, required=True, metavar="PHONE...")
@friendly_errors
def add(phones: tuple[str, ...]) -> None:
    """Opt numbers out: nothing more is sent to them."""
    normalized = _normalized(phones)
    added = producer().store.redis.sadd(keys.OPT_OUT, *normalized)
    click.echo(f"opted out: {added} (already listed: {len(set(normalized)) - added})")


@optout.command()
@click.argument("phones", nargs=-1, required=True, metavar="PHONE...")
@friendly_errors
def remove(phones: tuple[str, ...]) -> None:
    """Take numbers off the local list: they may be sent to again."""
    normalized = _normalized(phones)
    removed = producer().store.redis.srem(keys.OPT_OUT, *normalized)
    click.echo(f"opted in again: {removed} (not listed: {len(set(normalized)) - removed})")
    click.echo(LIGHTSMS_NOTE, err=True)


@optout.command()
@click.argument("phones", nargs=-1, required=True, metavar="PHONE...")
@json_option
@show_phones_option
@friendly_errors
def check(phones: tuple[str, ...], as_json: bool, show_phones: bool) -> None:
    """Whether each number is opted out (exit 0 either way; --json for scripts)."""
    normalized = _normalized(phones)
    listed = producer().store.opted_out(normalized)
    if as_json:
        # a list, not a mapping: two masked numbers may look alike
        echo_json([{"phone": shown_phone(p, show_phones), "opted_out": p in listed} for p in normalized])
        return
    for phone in normalized:
        click.echo(f"{shown_phone(phone, show_phones)}  {'opted out' if phone in listed else 'not opted out'}")
