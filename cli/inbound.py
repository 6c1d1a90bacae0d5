"""`lightsms-queue inbound rejected` (placeholder: being written)."""

from __future__ import annotations

import click


@click.group()
def inbound() -> None:
    """Incoming SMS: what LightSMS sent that could not be read."""
