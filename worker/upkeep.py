"""Upkeep beside the send pool: beat's ticks run on threads of their own.

The due mover, the sweeper and the pollers must keep running when every send thread is busy or
stuck in a slow reply; in Celery's pool they would wait behind the sends, since a worker whose
threads are all busy fetches nothing. So the pool consumes neither `sms.maintenance` nor `sms.poll`:
each worker process runs one UpkeepConsumer thread per queue, each with a broker connection of its
own, that takes beat's ticks from it and runs the task right there. The pollers have their own
thread so that a slow incoming.php or status.php reply never holds up the due mover. A tick is
acknowledged before it runs: ticks are periodic and idempotent, and one lost with its worker is
simply the next one's work.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery, bootsteps
from kombu import Connection, Consumer, Message, Queue
from kombu.mixins import ConsumerMixin

from core.contract import MAINTENANCE_QUEUE, POLL_QUEUE

log = logging.getLogger("lightsms_queue.upkeep")

STOP_TIMEOUT = 10.0


class UpkeepConsumer(ConsumerMixin):
    def __init__(self, app: Celery, connection: Connection, queue: Queue = MAINTENANCE_QUEUE) -> None:
        self.app = app
        self.connection = connection
        self.queue = queue
        self._outage_logged = False

    def get_consumers(self, consumer: Any, channel: Any) -> list[Consumer]:
        return [consumer(queues=[self.queue], callbacks=[self.on_tick], accept=["json"], prefetch_count=1)]

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        if not self._outage_logged:  # one line per outage, not a traceback per retry
            log.warning("upkeep: broker unreachable (%s); retrying", type(exc).__name__)
            self._outage_logged = True

    def on_connection_revived(self) -> None:
        if self._outage_logged:
            log.info("upkeep: broker reachable again")
        self._outage_logged = False

    def on_tick(self, body: Any, message: Message) -> None:
        try:
            message.ack()
            self._run(body, message.headers or {})
        except Exception as exc:  # noqa: BLE001 - one odd tick must not end upkeep; the next tries again
            log.error("upkeep: a tick failed (%s)", type(exc).__name__)

    def _run(self, body: Any, headers: dict[str, Any]) -> None:
        name = headers.get("task")
        task = self.app.tasks.get(name) if isinstance(name, str) else None
        if task is None:
            log.error("upkeep: dropping a message for unknown task %r", name)
            return
        if _expired(headers.get("expires")):
            return
        args, kwargs = _arguments(body)
        task(*args, **kwargs)

    def run_until_stopped(self) -> None:
        """run(), started again should anything escape it, until the worker stops."""
        while not self.should_stop:
            try:
                self.run()
            except Exception as exc:  # noqa: BLE001 - upkeep must outlive whatever went wrong
                log.error("upkeep: consumer failed (%s); starting it again", type(exc).__name__)
                time.sleep(1.0)


def _arguments(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """Celery's task message protocol 2: the body is [args, kwargs, embed]."""
    if isinstance(body, list | tuple) and len(body) >= 2 and isinstance(body[0], list | tuple):
        kwargs = body[1] if isinstance(body[1], dict) else {}
        return list(body[0]), {str(k): v for k, v in kwargs.items()}
    return [], {}


def _expired(expires: object) -> bool:
    if not isinstance(expires, str):
        return False
    try:
        when = datetime.fromisoformat(expires)
    except ValueError:
        return False
    if when.tzinfo is None:  # Celery writes an offset; a naive time is read as UTC
        when = when.replace(tzinfo=UTC)
    return when < datetime.now(UTC)


UPKEEP_QUEUES = (MAINTENANCE_QUEUE, POLL_QUEUE)


class UpkeepStep(bootsteps.StartStopStep):
    """Starts the upkeep threads with the worker and stops them with the worker."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.consumers: list[UpkeepConsumer] = []
        self.threads: list[threading.Thread] = []

    def start(self, parent: Any) -> None:
        app = parent.app
        # The pool must not take ticks too: a tick waiting behind busy send threads is the problem.
        app.amqp.queues.deselect([queue.name for queue in UPKEEP_QUEUES])
        for queue in UPKEEP_QUEUES:
            consumer = UpkeepConsumer(app, app.connection_for_read(), queue)
            thread = threading.Thread(target=consumer.run_until_stopped, name=f"lightsms-upkeep-{queue.name}",
                                      daemon=True)  # fmt: skip
            self.consumers.append(consumer)
            self.threads.append(thread)
            thread.start()

    def stop(self, parent: Any) -> None:
        for consumer in self.consumers:
            consumer.should_stop = True
        deadline = time.monotonic() + STOP_TIMEOUT
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
