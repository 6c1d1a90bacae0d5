"""Handlers for inbound SMS and delivery-status events (the inbound issue builds them)."""

__all__: list[str] = []
