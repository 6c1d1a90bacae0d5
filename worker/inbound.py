"""poll_incoming: incoming.php onto `sms.inbound` (placeholder: being written)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from core.events import EventPublisher
from core.settings import Settings
from lightsms.client import LightSmsClient


@dataclass
class IncomingPoller:
    settings: Settings
    redis: redis.Redis
    client: LightSmsClient
    publisher: EventPublisher

    def poll(self) -> dict[str, int]:
        return {}
