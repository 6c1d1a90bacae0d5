"""The task contract between producers and workers: names, queues and the payload.

A service without this package enqueues the same way: store the record (see README, "Enqueue
without this package"), then `celery.send_task(SEND_TASK, args=[{"v": 1, "ids": [...]}], queue=...)`.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from .errors import PayloadError
from .states import Priority

SEND_TASK = "lightsms.send"
MOVE_DUE_TASK = "lightsms.move_due"
SWEEP_TASK = "lightsms.sweep"
PAYLOAD_VERSION = 1

EXCHANGE = Exchange("sms", type="direct", durable=True)
QUEUES = tuple(
    Queue(p.queue, EXCHANGE, routing_key=p.queue, durable=True) for p in Priority
)
MAINTENANCE_QUEUE = Queue("sms.maintenance", EXCHANGE, routing_key="sms.maintenance", durable=True)


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
