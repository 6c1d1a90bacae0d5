"""`lightsms-queue send | status | cancel`: enqueue, look up and cancel messages from a shell."""

from __future__ import annotations

from datetime import datetime

import click

from lightsms.errors import InvalidInput

from .context import echo_json, fail, friendly_errors, json_option, producer, show_phones_option, shown_phone


def _when(value: str | None) -> datetime | float | None:
    """--at: an ISO 8601 time with its offset, or a unix time."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO 8601 time with an offset (2026-12-01T18:00:00+02:00) or a unix time") from None
    if when.tzinfo is None:
        raise click.BadParameter("give the offset too, e.g. 2026-12-01T18:00:00+02:00")
    return when


@click.command()
@click.argument("phone")
@click.argument("text")
@click.option("--sender", help="approved sender name (default LIGHTSMS_SENDER)")
@click.option("--at", "send_at", help="send at this time: ISO 8601 with offset, or a unix time")
@click.option("--priority", type=click.Choice(["high", "normal", "bulk"]), default="normal", show_default=True)
@friendly_errors
def send(phone: str, text: str, sender: str | None, send_at: str | None, priority: str) -> None:
    """Enqueue one SMS; prints its message id."""
    try:
        message_id = producer().send(phone, text, sender=sender, send_at=_when(send_at), priority=priority)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.reason}", code=2)
    click.echo(message_id)


@click.command()
@click.argument("ids", nargs=-1, required=True)
@json_option
@show_phones_option
@friendly_errors
def status(ids: tuple[str, ...], as_json: bool, show_phones: bool) -> None:
    """The state of each message (exit 1 if any is unknown)."""
    found = producer().store.get_many(list(ids))
    rows = []
    for message_id, message in zip(ids, found, strict=True):
        if message is None:
            rows.append({"id": message_id, "state": None})
            continue
        rows.append({"id": message_id, "state": message.state.value, "phone": shown_phone(message.phone, show_phones),
                     "error_code": message.error_code, "error_meaning": message.error_meaning,
                     "id_sms": message.id_sms})  # fmt: skip
    if as_json:
        echo_json(rows)
    else:
        for row in rows:
            if row["state"] is None:
                click.echo(f"{row['id']}  no such message")
            else:
                reason = f"  {row['error_code']}: {row['error_meaning']}" if row["error_meaning"] else ""
                click.echo(f"{row['id']}  {row['state']:<16} {row['phone']}{reason}")
    if any(row["state"] is None for row in rows):
        raise SystemExit(1)


@click.command()
@click.argument("ids", nargs=-1, required=True)
@friendly_errors
def cancel(ids: tuple[str, ...]) -> None:
    """Cancel messages not yet sending (exit 1 if any could not be cancelled)."""
    refused = [message_id for message_id in ids if not producer().cancel(message_id)]
    click.echo(f"cancelled: {len(ids) - len(refused)}")
    for message_id in refused:
        click.echo(f"not cancelled (sending, finished or unknown): {message_id}", err=True)
    if refused:
        raise SystemExit(1)
