"""Beat-driven upkeep: move due messages back to the queue, and sweep what a lost worker left."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core import keys
from core.keys import PRIORITIES
from core.message import Message
from core.pause import AccountCircuit
from core.states import OnUnknown, State
from core.stats import Stats
from core.store import Move, Store
from producers.producer import Producer

from .policy import RetryPolicy

log = logging.getLogger("lightsms_queue.maintenance")

DUE_CHUNK = 5000
SWEEP_CHUNK = 5000
BACKLOG_PATIENCE = 6
BACKLOG_PATIENCE_FLOOR = 600.0  # seconds: a long backlog is not re-published every few minutes


@dataclass
class Maintenance:
    producer: Producer
    circuit: AccountCircuit
    policy: RetryPolicy

    @property
    def store(self) -> Store:
        return self.producer.store

    def move_due(self, *, now: float | None = None) -> int:
        """Queue every SCHEDULED/DEFERRED message that is due; the number queued."""
        total = 0
        while True:
            moved = self.store.pop_due(now=now or time.time(), limit=DUE_CHUNK)
            self.producer.requeue(moved)
            total += len(moved)
            if len(moved) < DUE_CHUNK:
                return total

    def sweep(self, *, requeue_after: float, balance_probe: Callable[[], Decimal] | None = None) -> dict[str, int]:
        """Re-queue QUEUED messages whose task was lost; settle SENDING ones whose lease ran out."""
        now = self.store.now()
        requeued = sum(self._requeue_lost(priority, now=now, requeue_after=requeue_after) for priority in PRIORITIES)
        settled = self._settle_expired_leases(now)
        # A SENT record expires with its TTL; its entry in the status index would stay for ever.
        self.store.redis.zremrangebyscore(keys.STATUS_DUE_INDEX, "-inf", now - self.store.record_ttl)
        if balance_probe is not None:
            self._probe_pause(balance_probe)
        return {"requeued": requeued, **settled}

    def _requeue_lost(self, priority: str, *, now: float, requeue_after: float) -> int:
        # Tasks are taken in order: while the queue still holds tasks, a stale message's task may be
        # among them (a backlog, not a loss); once it is empty, a message still QUEUED lost its task.
        # A backlog that lasts BACKLOG_PATIENCE times longer is not trusted any more.
        draining = self.producer.dispatcher.waiting(priority) > 0
        cutoff = now - (max(requeue_after * BACKLOG_PATIENCE, BACKLOG_PATIENCE_FLOOR) if draining else requeue_after)
        lost = self._still_in(
            self.store.ids_in(keys.state_index(State.QUEUED, priority), upto=cutoff, limit=SWEEP_CHUNK), State.QUEUED
        )
        self.producer.requeue([(m.id, priority) for m in lost])
        return len(lost)

    def _settle_expired_leases(self, now: float) -> dict[str, int]:
        leases_out = self.store.ids_in(keys.state_index(State.SENDING), upto=now, limit=SWEEP_CHUNK)
        expired = self._still_in(leases_out, State.SENDING)
        moves: list[Move] = []
        for m in expired:
            released = {"lease": "", "inflight": "0"}
            if not m.inflight:
                # Claimed, but no request was ever started (checked again atomically by the move).
                moves.append(self._move(m, State.QUEUED, when=("inflight", "0"), score=now, queued_at=now, **released))
            elif m.on_unknown == OnUnknown.RESEND and not self.policy.spent(m.attempts + 1):
                moves.append(self._move(m, State.QUEUED, when=("inflight", "1"), score=now, queued_at=now,
                                        attempts=m.attempts + 1, **released))  # fmt: skip
            else:
                # The lease stays: should the worker's reply still arrive, it settles the message.
                moves.append(self._move(
                    m, State.UNKNOWN, when=("inflight", "1"), score=now, attempts=m.attempts + 1, inflight="0",
                    error_code="lease_expired",
                    error_meaning="the worker was lost while the request may have reached LightSMS",
                ))  # fmt: skip
        results = self.store.apply(moves)
        requeued = [(mv.message_id, m.priority) for mv, m, (ok, _) in zip(moves, expired, results, strict=True)
                    if ok and mv.to is State.QUEUED]  # fmt: skip
        self.producer.requeue(requeued)
        unknown = sum(1 for mv, (ok, _) in zip(moves, results, strict=True) if ok and mv.to is State.UNKNOWN)
        if unknown:
            Stats(self.store.redis).record({"unknown": unknown})
            log.warning("%d message(s) became UNKNOWN: their worker was lost mid-request", unknown)
        return {"released": len(requeued), "unknown": unknown}

    def _probe_pause(self, balance_probe: Callable[[], Decimal]) -> None:
        """While paused, ask LightSMS for the balance: an answer proves the base URL and the login
        work again; a pause for funds also needs money for at least one part. Only the first pauses
        of a run end early this way (see PROBE_STRIKES)."""
        pause = self.circuit.current()
        if pause is None or not pause.probe:
            return  # none, one an operator set, or one of a run that must now wait itself out
        try:
            money = balance_probe()
        except Exception as exc:  # noqa: BLE001 - a failed probe just keeps the pause
            log.info("LightSMS probe failed while paused (%s): still paused", type(exc).__name__)
            return
        if pause.for_funds and not self.circuit.covers_one_part(money):
            log.info("balance %s does not cover one SMS part: still paused", money)
            return
        self.circuit.resume()
        log.warning("LightSMS answers again (%s): sending resumes", pause.reason)

    def _still_in(self, ids: list[str], state: State) -> list[Message]:
        return [m for m in self.store.get_many(ids) if m is not None and m.state is state]

    def _move(self, m: Message, to: State, *, when: tuple[str, str], score: float, **fields: object) -> Move:
        # The lease must still have run out when the move happens: a worker may have renewed it since.
        return Move(m.id, (m.state,), to, score=score, lease=m.lease or "", fields=tuple(fields.items()), when=when,
                    expired_by=score)  # fmt: skip
