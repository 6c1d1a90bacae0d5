"""Support-ticket intake: every message opens a ticket (a number from INCR, the message in a hash)
and the sender gets "Ticket #N received". Run it behind the keyword router so that STOP, START and
HELP never become tickets: `lightsms-queue consume --keywords examples.ticket_intake:handle`.

A redelivered event finds its ticket (keyed by the event id) and re-sends nothing: the reply's
idempotency key is derived from the event id too. Short codes and alphanumeric senders get a ticket
but no acknowledgement, and neither does a number that opted out.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from consumers.autoreply import can_reply
from core.contract import event_id
from core.redis_client import store_client
from core.settings import load_core_settings
from producers import OptedOutError, Producer

log = logging.getLogger("examples.ticket_intake")

TICKET_KEPT = 90 * 86400  # how long an event id keeps pointing at its ticket
# KEYS[1] event -> ticket number, KEYS[2] the ticket counter
# ARGV[1] the ticket hash prefix, ARGV[2] seconds to keep KEYS[1], ARGV[3..] field, value pairs.
# Returns the ticket number, the one already opened for this event if any. (The ticket's hash is named
# here, from the new number: one Redis, no cluster.)
_OPEN = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
local number = redis.call('INCR', KEYS[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', ARGV[1] .. number, ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[1], number, 'EX', ARGV[2])
return tostring(number)
"""


class TicketIntake:
    def __init__(self, client: redis.Redis, producer: Producer, *, prefix: str = "example:ticket") -> None:
        self.redis = client
        self.producer = producer
        self.prefix = prefix
        self._open = client.register_script(_OPEN)

    def __call__(self, event: dict[str, Any]) -> int:
        """The ticket number of this event's ticket."""
        eid = event_id(event)
        fields = {"event_id": eid, "sender": str(event.get("sender", "")), "text": str(event.get("text", "")),
                  "received_at": str(event.get("received_at", "")), "status": "open"}  # fmt: skip
        raw = self._open(
            keys=[f"{self.prefix}:by-event:{eid}", f"{self.prefix}:counter"],
            args=[f"{self.prefix}:", TICKET_KEPT, *[item for pair in fields.items() for item in pair]],
        )
        number = int(raw)
        if can_reply(event.get("sender")):
            try:
                self.producer.send(str(event["sender"]), f"Ticket #{number} received",
                                   idempotency_key=f"ticket-ack:{eid}")  # fmt: skip
            except OptedOutError:
                log.info("ticket #%d: the sender opted out, no acknowledgement", number)
        return number

    def ticket(self, number: int) -> dict[str, str]:
        found = self.redis.hgetall(f"{self.prefix}:{number}")
        return {_text(k): _text(v) for k, v in found.items()}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_handler: TicketIntake | None = None


def handle(event: dict[str, Any]) -> int:
    global _handler
    if _handler is None:  # built on first use, from REDIS_URL and the other core settings
        settings = load_core_settings()
        client = store_client(settings, decode_responses=True)
        _handler = TicketIntake(client, Producer(settings))
    return _handler(event)
