"""poll_status: status.php for SENT messages, changes onto `sms.status` (placeholder: being written)."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import EventPublisher
from core.pause import AccountCircuit
from core.settings import Settings
from core.stats import Stats
from core.store import Store
from lightsms.client import LightSmsClient

from .limiter import RateLimiter


@dataclass
class StatusPoller:
    settings: Settings
    store: Store
    stats: Stats
    client: LightSmsClient
    limiter: RateLimiter
    circuit: AccountCircuit
    publisher: EventPublisher

    def poll(self) -> dict[str, int]:
        return {}
