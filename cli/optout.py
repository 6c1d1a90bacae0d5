"""`lightsms-queue optout list|add|remove|check` (placeholder: being written)."""

from __future__ import annotations

import click


@click.group()
def optout() -> None:
    """The local opt-out list: producers refuse these numbers, workers never send to them."""
