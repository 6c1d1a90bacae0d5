"""Celery tasks. Payloads carry message ids only: no phone numbers or text in the broker or Flower."""

from __future__ import annotations

import logging
from typing import Any

from core.contract import (
    MOVE_DUE_TASK,
    POLL_INCOMING_TASK,
    POLL_STATUS_TASK,
    SEND_TASK,
    SWEEP_TASK,
    PayloadError,
    read_payload,
)
from core.logs import bound_message_ids

from .celery_app import app
from .runtime import runtime

log = logging.getLogger("lightsms_queue.tasks")


@app.task(name=SEND_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send(payload: Any) -> None:
    try:
        ids = read_payload(payload)
    except PayloadError as exc:
        log.error("dropping a send task: %s", exc)  # retrying cannot make it readable
        return
    with bound_message_ids(ids):
        runtime(app).sender.run(ids)


@app.task(name=MOVE_DUE_TASK, ignore_result=True)
def move_due() -> int:
    return runtime(app).maintenance.move_due()


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> dict[str, int]:
    rt = runtime(app)
    return rt.maintenance.sweep(
        requeue_after=rt.settings.lightsms_requeue_after, balance_probe=lambda: rt.client.balance().money
    )


@app.task(name=POLL_INCOMING_TASK, ignore_result=True)
def poll_incoming() -> dict[str, int]:
    return runtime(app).incoming.poll()


@app.task(name=POLL_STATUS_TASK, ignore_result=True)
def poll_status() -> dict[str, int]:
    return runtime(app).delivery.poll()
