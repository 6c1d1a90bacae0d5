"""RedisEventConsumer: one handler over one event queue on a Redis broker, without losing an event to
a Redis that goes away mid-pop.

kombu's Redis transport pops a message (BRPOP) and only then records it as unacked; a Redis killed
between its pop (already in the AOF) and the reply reaching us leaves the event nowhere. Here the
take is one atomic move (BLMOVE) from the queue's list to this consumer's own held list
(core.keys.consumer_held), so an event is always in exactly one list Redis keeps:
- settled: consumer_settle.lua takes it off the held list and, for a retry or a dead record, pushes
  the new message in the same step;
- this consumer reconnects or stops: consumer_session.lua gives its held list back to the front of
  the queue (the handled key makes a redelivery after a successful return a no-op);
- this consumer dies (kill -9, a lost host): its renewal in the registry (core.keys.consumers_of,
  kept up by a thread: alive_mark.py) grows older than LIGHTSMS_CONSUMER_DEAD_AFTER, and any other
  consumer of the queue, sweeping the registry, gives its held list back.

A consumer holds one event at a time (prefetch is RabbitMQ's), and reads the queue's own list: kombu
puts a message published with a priority above 0 on lists of its own, and no publisher here does.
One event's path is handling.py's.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from kombu import Connection

from core import keys
from core.contract import dead_queue_name
from core.errors import ConfigError
from core.store import load_script

from .alive_mark import AliveMark
from .failures import RETRIES_HEADER, retries_of
from .handling import EventHandling, Handler, is_outage
from .lifecycle import Lifecycle
from .redis_envelope import Envelope, EnvelopeError, new_envelope, read_envelope

__all__ = ["RedisEventConsumer"]

log = logging.getLogger("lightsms_queue.consumers")

POLL_SECONDS = 1.0  # how long a take waits for an event: a stop is noticed within it
TAKE_SLACK = 3.0  # seconds a take's reply may take past its wait before the broker counts as gone
RECONNECT_DELAYS = (0.2, 0.7, 1.2, 2.0, 3.0)  # then every 3 s
MIN_REDIS = (6, 2)  # BLMOVE, LMOVE


class RedisEventConsumer:
    def __init__(
        self,
        connection: Connection,
        handler: Handler,
        *,
        queue: str,
        store: redis.Redis,
        max_retries: int,
        dead_after: float,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.connection = connection
        self.queue = queue
        self.dead_queue = dead_queue_name(queue)
        self.store = store
        self.dead_after = dead_after
        self.poll_seconds = POLL_SECONDS
        self.consumer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.handling = EventHandling(handler, queue=queue, dead_queue=self.dead_queue, store=store,
                                      max_retries=max_retries, should_stop=lambda: self.should_stop)  # fmt: skip
        self.lifecycle = Lifecycle(should_stop)
        self._client: redis.Redis | None = None
        self._alive: AliveMark | None = None
        self._prefix = ""  # kombu's global_keyprefix, when the broker options set one
        self._in_session = False
        self._next_sweep = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def should_stop(self) -> bool:
        return self.lifecycle.stopping

    def stop(self) -> None:
        """Finish the event in hand, then return from run() (safe from a signal handler)."""
        self.lifecycle.stop()

    def run(self) -> None:
        """Consume until stopped, riding out every broker or store outage."""
        failures = 0
        try:
            while not self.should_stop:
                try:
                    if not self._in_session:
                        self._start_session()
                    assert self._alive is not None
                    if time.monotonic() >= self._next_sweep and self._alive.steady:
                        self._sweep()
                    if not self._alive.fresh:  # its thread could not renew it lately (see alive_mark.py)
                        self._alive.renew()
                    self._take_one()
                    failures = 0
                except Exception as exc:
                    if not is_outage(exc):  # a bug must not pass for an outage and be retried forever
                        raise
                    self._lost(exc)
                    self._pause(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
                    failures += 1
        finally:  # a handler's BaseException too: what it held goes back now, not once it counts as dead
            self._end_session()
        log.info("consumer of %s stopped", self.queue)

    def close(self) -> None:
        if self._alive is not None:
            self._alive.stop()
        if self._client is not None:
            self._client.close()
        self.connection.release()
        self.store.close()

    # -- the session: registered, alive, nothing held from before ------------------------------

    def _start_session(self) -> None:
        alive = self._connect()
        sent = time.monotonic()
        given = self._session("start", self.consumer_id)
        alive.renewed(sent)
        alive.start()
        self._in_session = True
        # Sweep others only once they had time to renew: back from the same outage, or from one this
        # consumer did not see (it was not running yet).
        self._next_sweep = time.monotonic() + self.dead_after
        self.lifecycle.back(given)
        log.info("consuming %s with %s (max retries %d)",
                 self.queue, self.handling.handler_name, self.handling.max_retries)  # fmt: skip

    def _end_session(self) -> None:
        if self._alive is None:
            return
        self._alive.stop()  # or it would register this consumer again after the stop
        self._in_session = False
        try:  # even after an outage: the broker may be back (a hung one costs a read timeout)
            given = self._session("stop", self.consumer_id)
        except Exception as exc:  # it counts as dead after dead_after, and another consumer gives it back
            if not is_outage(exc):
                raise
            log.warning("could not give back what this consumer held (%s)", type(exc).__name__)
            return
        self.lifecycle.gave_back(given)

    def _connect(self) -> AliveMark:
        if self._alive is None:
            # Through kombu's channel: the broker URL's every form (sentinels, TLS, sockets) and options;
            # with a read timeout, so that a Redis that stops answering is an outage, not a hang.
            options: dict[str, Any] = dict(self.connection.transport_options or {})
            options["socket_timeout"] = max(options.get("socket_timeout") or 0, self._take_seconds + TAKE_SLACK)
            self.connection.transport_options = options  # type: ignore[assignment]  # typed None in kombu
            self.connection.ensure_connection(max_retries=1, timeout=5)
            channel: Any = self.connection.default_channel
            client = redis.Redis(connection_pool=channel.pool)
            if (channel.pool.connection_kwargs.get("socket_timeout") or 0) < self._take_seconds + 1:
                raise ConfigError("the consumer's broker connection was connected before the consumer set "
                                  "its read timeout: give it a kombu Connection not yet connected")  # fmt: skip
            _check_version(client)
            self._client = client
            self._prefix = channel.global_keyprefix or ""
            self._queue_key = self._key(self.queue)
            self._held_key = self._key(keys.consumer_held(self.queue, self.consumer_id))
            self._session_script = client.register_script(load_script("consumer_session.lua"))
            self._settle_script = client.register_script(load_script("consumer_settle.lua"))
            self._alive = AliveMark(lambda: self._session("renew", self.consumer_id), dead_after=self.dead_after)
        return self._alive

    def _session(self, mode: str, consumer_id: str) -> int:
        held = self._key(keys.consumer_held(self.queue, consumer_id))
        registry = self._key(keys.consumers_of(self.queue))
        return int(self._session_script(keys=[held, self._queue_key, registry],
                                        args=[mode, consumer_id, int(self.dead_after * 1000)]))  # fmt: skip

    def _sweep(self) -> None:
        assert self._client is not None
        # A dead consumer's event comes back within dead_after and half as much again.
        self._next_sweep = time.monotonic() + self.dead_after / 2
        for raw_id in self._client.zrange(self._key(keys.consumers_of(self.queue)), 0, -1):
            other = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if other == self.consumer_id:
                # It holds nothing between events: anything on its list is a take whose reply was lost.
                self.lifecycle.gave_back(self._session("start", other))
                continue
            given = self._session("sweep", other)
            if given > 0:
                log.warning("consumer %s stopped answering: %d event(s) it held given back", other, given)

    def _lost(self, exc: BaseException) -> None:
        self._in_session = False
        if self._client is not None:
            # No half-read reply on a socket used again; the thread's own, in use, it closes itself.
            self._client.connection_pool.disconnect(inuse_connections=False)
        self.lifecycle.lost(exc)

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    @property
    def _take_seconds(self) -> float:
        # Short against dead_after: an event taken at the end of a wait finds the renewal still fresh.
        return min(self.poll_seconds, self.dead_after / 4)

    def _key(self, name: str) -> str:
        return self._prefix + name

    # -- one event -------------------------------------------------------------------------------

    def _take_one(self) -> None:
        assert self._client is not None
        wait: Any = self._take_seconds  # a float: Redis takes decimal timeouts (redis-py types it int)
        taken = self._client.blmove(self._queue_key, self._held_key, wait, src="RIGHT", dest="LEFT")
        if taken is None:
            return
        raw = taken if isinstance(taken, bytes) else taken.encode()
        held = _Held(self, raw)
        try:
            envelope = read_envelope(raw)
        except EnvelopeError as exc:
            self.handling.undecodable(raw, exc, 0, held)
            return
        held.envelope = envelope
        retries = retries_of(envelope.headers)
        try:
            body = envelope.decode()
        except Exception as exc:  # kombu's decode errors, and a content type we do not accept
            self.handling.undecodable(envelope.body, exc, retries, held)
            return
        self.handling.handle(body, retries, held)

    def settle(self, raw: bytes, publish_to: str | None = None, message: bytes | None = None) -> None:
        targets = [self._key(publish_to)] if publish_to else []
        args = [raw] if message is None else [raw, message]
        if not self._settle_script(keys=[self._held_key, self._queue_key, *targets], args=args):
            log.info("an event of %s was given back before it was settled: it comes again", self.queue)


def _check_version(client: redis.Redis) -> None:
    try:
        version = str(client.info("server").get("redis_version", ""))
    except redis.ResponseError:  # INFO not allowed to this user: the first take says it, if anything
        return
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers and numbers < MIN_REDIS:
        raise ConfigError(f"the Redis broker is version {version}; consumers need 6.2 or later (BLMOVE)")


class _Held:
    """The settlement (handling.Settlement) of the event this consumer holds."""

    def __init__(self, consumer: RedisEventConsumer, raw: bytes) -> None:
        self.consumer = consumer
        self.raw = raw
        self.envelope: Envelope | None = None

    def ack(self) -> None:
        self.consumer.settle(self.raw)

    def retry(self, retries: int) -> None:
        assert self.envelope is not None  # a handler only ran on an event it could read
        self.consumer.settle(self.raw, self.consumer.queue, self.envelope.again(**{RETRIES_HEADER: retries}))

    def dead(self, record: dict[str, Any]) -> None:
        self.consumer.settle(self.raw, self.consumer.dead_queue, new_envelope(record, self.consumer.dead_queue))
