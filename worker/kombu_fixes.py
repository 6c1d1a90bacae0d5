"""A kombu defect the worker must survive: after a Redis restart, kombu can reach a channel whose
transport it has already detached from its connection, and `_connparams` raises AttributeError
('NoneType' object has no attribute 'hostname'). Two paths do it:
- Celery closes the broker connection (`on_connection_error_after_connected`); closing its default
  channel restores that channel's unacked messages through the detached transport.
  `Connection.maybe_close_channel` ignores only connection and channel errors;
- a task that finishes after the reconnect acks its message on the old channel;
  `Message.ack_log_error` / `reject_log_error` forgive only the errors Celery passes.
Either way the AttributeError escapes, Celery calls it unrecoverable, and the worker exits
(tests/worker/test_redis_restart.py, about one run in four).

The old channel is gone either way, so these are treated as the connection errors they are. Its
unacked tasks are lost with it (the worker takes tasks without kombu's emulated acks:
worker/celery_app.py), and their messages are settled or queued again by the sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kombu import Connection
from kombu.message import Message

log = logging.getLogger("lightsms_queue.kombu")

_MARK = "_lightsms_tolerates_detached_transport"
DETACHED = (AttributeError,)
Errors = tuple[type[BaseException], ...]


def tolerate_detached_transport() -> None:
    if getattr(Connection.maybe_close_channel, _MARK, False):
        return
    close = Connection.maybe_close_channel
    ack = Message.ack_log_error
    reject = Message.reject_log_error

    def maybe_close_channel(self: Connection, channel: Any) -> None:
        try:
            close(self, channel)
        except DETACHED as exc:
            log.warning("broker channel closed on a detached transport (%s)", exc)

    def ack_log_error(self: Message, logger: Any, errors: Errors, multiple: bool = False) -> None:
        ack(self, logger, (*errors, *DETACHED), multiple=multiple)

    def reject_log_error(self: Message, logger: Any, errors: Errors, requeue: bool = False) -> None:
        reject(self, logger, (*errors, *DETACHED), requeue=requeue)

    patched: list[tuple[type, str, Callable[..., None]]] = [
        (Connection, "maybe_close_channel", maybe_close_channel),
        (Message, "ack_log_error", ack_log_error),
        (Message, "reject_log_error", reject_log_error),
    ]
    for owner, name, function in patched:
        setattr(function, _MARK, True)
        setattr(owner, name, function)
