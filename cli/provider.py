"""`lightsms-queue balance | senders`: ask LightSMS (these read the credentials); `sim`: run the simulator."""

from __future__ import annotations

import click

from core.client import build_client

from .context import echo_json, friendly_errors, json_option, settings


@click.command()
@json_option
@friendly_errors
def balance(as_json: bool) -> None:
    """The account balance (balance.php)."""
    with build_client(settings()) as client:
        found = client.balance()
    if as_json:
        echo_json({"money": str(found.money), "currency": found.currency})
    else:
        click.echo(f"{found.money} {found.currency or ''}".rstrip())


@click.command()
@json_option
@friendly_errors
def senders(as_json: bool) -> None:
    """Sender names and their approval state (senders.php)."""
    with build_client(settings()) as client:
        found = client.senders()
    if as_json:
        echo_json(found)
    else:
        for name, state in sorted(found.items()):
            click.echo(f"{name:<16} {state}")


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sim(args: tuple[str, ...]) -> None:
    """Run the LightSMS simulator (the options of `lightsms-sim --help`)."""
    from simulator.cli import main as simulator  # development tooling: imported only for this command

    raise SystemExit(simulator(list(args)))
