"""`lightsms-queue consume` and `lightsms-queue dead-events` (placeholder: being written)."""

from __future__ import annotations

import click


@click.command()
def consume() -> None:
    """Run a handler for sms.inbound or sms.status events."""


@click.group("dead-events")
def dead_events() -> None:
    """Events a handler kept failing on (<queue>.dead): list, requeue, purge."""
