"""The contract between roles: task names, queues, the send payload, and the event schemas.

A service without this package enqueues the same way: store the record (see README, "Enqueue
without this package"), then `celery.send_task(SEND_TASK, args=[{"v": 1, "ids": [...]}], queue=...)`.
It consumes events the same way too: each event queue is declared exactly as kombu's
`SimpleQueue(name)` declares it (a direct exchange of the queue's own name), so
`connection.SimpleQueue("sms.inbound").get()` on the broker reads them.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from .errors import PayloadError
from .states import Priority

SEND_TASK = "lightsms.send"
MOVE_DUE_TASK = "lightsms.move_due"
SWEEP_TASK = "lightsms.sweep"
POLL_INCOMING_TASK = "lightsms.poll_incoming"
POLL_STATUS_TASK = "lightsms.poll_status"
PAYLOAD_VERSION = 1

EXCHANGE = Exchange("sms", type="direct", durable=True)
QUEUES = tuple(
    Queue(p.queue, EXCHANGE, routing_key=p.queue, durable=True) for p in Priority
)
MAINTENANCE_QUEUE = Queue("sms.maintenance", EXCHANGE, routing_key="sms.maintenance", durable=True)
# The pollers' ticks: a queue of their own, on a thread of their own in each worker, so that a slow
# incoming.php or status.php reply never holds up the due mover and the sweeper.
POLL_QUEUE = Queue("sms.poll", EXCHANGE, routing_key="sms.poll", durable=True)


def send_payload(message_ids: list[str]) -> dict[str, Any]:
    return {"v": PAYLOAD_VERSION, "ids": list(message_ids)}


def read_payload(payload: object) -> list[str]:
    """The message ids of a send task; a payload of another version is refused, not guessed at."""
    if not isinstance(payload, dict) or payload.get("v") != PAYLOAD_VERSION:
        raise PayloadError(f"unsupported send payload version: {payload!r:.80}")
    ids = payload.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise PayloadError("send payload 'ids' must be a list of message ids")
    return ids


# --- events: what the pollers publish for consumers --------------------------------------------

EVENT_SCHEMA = 1
INBOUND_QUEUE_NAME = "sms.inbound"
STATUS_QUEUE_NAME = "sms.status"
DEAD_SUFFIX = ".dead"


def event_queue(name: str) -> Queue:
    """A durable event queue, declared as kombu's SimpleQueue(name) declares it, so that a plain
    kombu consumer's declaration matches ours (RabbitMQ refuses a mismatched redeclaration)."""
    return Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)


def dead_queue_name(queue: str) -> str:
    """Where a consumer puts the events its handler kept failing on: `<queue>.dead`."""
    return queue + DEAD_SUFFIX


INBOUND_QUEUE = event_queue(INBOUND_QUEUE_NAME)
STATUS_QUEUE = event_queue(STATUS_QUEUE_NAME)


def inbound_event(
    *, sms_id: str, received_at: str, sender: str, phone: str | None, prefix: str | None, text: str
) -> dict[str, Any]:
    """An incoming SMS on `sms.inbound`. `received_at`: ISO 8601 with the account timezone's offset;
    `sender`: the subscriber who texted; `phone`: our receiving number (None when LightSMS omits it)."""
    return {
        "schema": EVENT_SCHEMA,
        "id": sms_id,
        "received_at": received_at,
        "sender": sender,
        "phone": phone,
        "prefix": prefix,
        "text": text,
    }


def status_event(
    *, message_id: str, id_sms: str, status: str, at: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """A delivery status change on `sms.status`: no phone number, the message id joins it to the
    record. `status`: the message's new state (DELIVERED, UNDELIVERED, EXPIRED, PARTLY_DELIVERED);
    `at`: when it was learnt, ISO 8601 UTC; `metadata`: the metadata the message was enqueued with."""
    return {
        "schema": EVENT_SCHEMA,
        "message_id": message_id,
        "id_sms": id_sms,
        "status": status,
        "at": at,
        "metadata": metadata,
    }


def event_id(event: object) -> str:
    """The id a handler is idempotent by: an incoming SMS's LightSMS id, or `<message id>:<status>`
    for a status change (a message reaches each status once). Raises PayloadError otherwise."""
    if not isinstance(event, dict) or event.get("schema") != EVENT_SCHEMA:
        raise PayloadError(f"unsupported event schema: {event!r:.80}")
    if isinstance(event.get("id"), str) and event["id"]:
        return str(event["id"])
    if isinstance(event.get("message_id"), str) and isinstance(event.get("status"), str):
        return f"{event['message_id']}:{event['status']}"
    raise PayloadError("an event with neither an 'id' nor a 'message_id' and 'status'")
