"""`lightsms-queue`: operate the queue from a shell (click, like Celery's own command line).

    lightsms-queue send PHONE TEXT [--sender S] [--at TIME] [--priority P] | status ID ... | cancel ID ...
    lightsms-queue send-bulk FILE.csv [--text T] [--key K] [--dry-run]
    lightsms-queue balance | senders | sim [simulator options]
    lightsms-queue stats | get ID | metrics [--port 9808]
    lightsms-queue dead list | retry [ID ...] | purge [ID ...]
    lightsms-queue unknown list | sent ID ... | failed ID ... | resend ID ...
    lightsms-queue optout list | add PHONE ... | remove PHONE ... | check PHONE ...
    lightsms-queue inbound rejected
    lightsms-queue consume [module:function] [--queue sms.status] [--keywords]
    lightsms-queue dead-events list | requeue | purge [--queue sms.inbound]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import click
import redis

from core import keys
from core.message import Message
from core.pause import AccountCircuit, Pause
from core.redis_client import reply_text
from core.stats import Stats

from .bulk import send_bulk
from .consume import consume, dead_events
from .context import echo_json, fail, friendly_errors, json_option, producer, show_phones_option, shown_phone
from .inbound import inbound
from .metrics import metrics
from .operations import Operations
from .optout import optout
from .provider import balance, senders, sim
from .sending import cancel, send, status


def _row(m: Message, show_phones: bool) -> str:
    reason = m.error_meaning or ""
    phone = shown_phone(m.phone, show_phones)
    return f"{m.id}  {m.state.value:<8} {phone:<16} attempts={m.attempts}  {m.error_code or ''} {reason}"


def _record(m: Message, show_phones: bool) -> dict[str, object]:
    shown = m.public()
    shown["phone"] = shown_phone(m.phone, show_phones)
    return shown


def _refused(ids: tuple[str, ...], done: set[str]) -> None:
    """Exit 1, naming them, when some of the ids given by name were not acted on."""
    missed = [message_id for message_id in dict.fromkeys(ids) if message_id not in done]
    for message_id in missed:
        click.echo(f"not in that list (or not found): {message_id}", err=True)
    if missed:
        raise SystemExit(1)


def _pauses(client: redis.Redis) -> Iterator[tuple[str, Pause]]:
    """Every account pause in Redis (sms:pause:<login>), by login: the CLI holds no login of its own."""
    prefix = keys.pause("")
    for raw in sorted(client.scan_iter(match=keys.pause("*"), count=100)):
        login = reply_text(raw).removeprefix(prefix)
        pause = AccountCircuit(client, login=login).current()
        if pause is not None:  # it may have ended since the scan
            yield login, pause


def _describe(pause: Pause) -> str:
    until = datetime.fromtimestamp(pause.until, UTC).isoformat(timespec="seconds")
    code = f" (code {pause.code})" if pause.code is not None else ""
    return f"yes, until {until}: {pause.reason}{code}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Operate the lightsms-queue store, the opt-out list, inbound SMS and consumers."""


@cli.command()
@json_option
@friendly_errors
def stats(as_json: bool) -> None:
    """Counters: sent, failed by code, unknown, suppressed, dead, cost, parts; and any account pause."""
    client = producer().store.redis
    counters = Stats(client).read()
    pauses = list(_pauses(client))
    if as_json:
        echo_json({"counters": counters,
                   "paused": {login: {"until": p.until, "reason": p.reason, "code": p.code} for login, p in pauses}})
        return
    for name, value in counters.items():
        click.echo(f"{name:<24} {value}")
    for login, pause in pauses:
        click.echo(f"{'paused:' + login:<24} {_describe(pause)}")
    if not pauses:
        click.echo(f"{'paused':<24} no")


@cli.command()
@click.argument("message_id")
@show_phones_option
@friendly_errors
def get(message_id: str, show_phones: bool) -> None:
    """One message's state and details (JSON)."""
    found = producer().store.get(message_id)
    if found is None:
        fail(f"no such message: {message_id}")
    echo_json(_record(found, show_phones))


@cli.command()
@click.argument("action", type=click.Choice(["list", "retry", "purge"]))
@click.argument("ids", nargs=-1)
@json_option
@show_phones_option
@friendly_errors
def dead(action: str, ids: tuple[str, ...], as_json: bool, show_phones: bool) -> None:
    """The dead-letter list: list, retry [ID ...] or purge [ID ...] (default: all)."""
    ops = Operations(producer())
    if action == "list":
        found = ops.dead()
        if as_json:
            echo_json([_record(m, show_phones) for m in found])
        for m in [] if as_json else found:
            click.echo(_row(m, show_phones))
        if not found and not as_json:
            click.echo("no DEAD messages")
    elif action == "retry":
        queued = ops.retry_dead(list(ids) or None)
        click.echo(f"queued again: {len(queued)}")
        _refused(ids, set(queued))
    else:
        purged, released = ops.purge_dead(list(ids) or None)
        click.echo(f"purged: {purged} (idempotency keys released: {released})")
        if ids and purged < len(set(ids)):
            fail(f"{len(set(ids)) - purged} of the ids named were not DEAD (or not found): nothing done to them")


@cli.command()
@click.argument("action", type=click.Choice(["list", "sent", "failed", "resend"]))
@click.argument("ids", nargs=-1)
@json_option
@show_phones_option
@friendly_errors
def unknown(action: str, ids: tuple[str, ...], as_json: bool, show_phones: bool) -> None:
    """Messages whose outcome is unknown: list, or settle each after checking with LightSMS."""
    ops = Operations(producer())
    if action == "list":
        found = ops.unknown()
        if as_json:
            echo_json([_record(m, show_phones) for m in found])
        for m in [] if as_json else found:
            click.echo(_row(m, show_phones))
        if not found and not as_json:
            click.echo("no UNKNOWN messages")
        return
    if not ids:
        fail("name the message ids to settle", code=2)
    settled = ops.settle_unknown(list(ids), outcome=action)
    click.echo(f"settled as {action}: {len(settled)}")
    _refused(ids, set(settled))


for command in (send, send_bulk, status, cancel, balance, senders, sim, metrics, optout, inbound, consume,
                dead_events):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; also callable from Python with an argument list (returns the exit code)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="lightsms-queue", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
