"""Operator actions on stored messages: the dead-letter list and the UNKNOWN list."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import keys
from core.message import Message
from core.states import State
from core.store import Move
from producers.producer import Producer


@dataclass
class Operations:
    producer: Producer

    def listed(self, index: str, *, limit: int = 1000) -> list[Message]:
        store = self.producer.store
        return [m for m in store.get_many(store.ids_in(index, limit=limit)) if m is not None]

    def dead(self, *, limit: int = 1000) -> list[Message]:
        return self.listed(keys.state_index(State.DEAD), limit=limit)

    def unknown(self, *, limit: int = 1000) -> list[Message]:
        return self.listed(keys.state_index(State.UNKNOWN), limit=limit)

    def retry_dead(self, message_ids: list[str] | None = None) -> list[str]:
        """DEAD -> QUEUED with a fresh retry budget; the ids queued again."""
        targets = self.dead() if message_ids is None else self._existing(message_ids)
        now = time.time()
        moves = [
            Move(m.id, (State.DEAD,), State.QUEUED, score=now,
                 fields=(("attempts", 0), ("reason", ""), ("queued_at", now)))
            for m in targets
        ]  # fmt: skip
        results = self.producer.store.apply(moves)
        queued = [m for m, (ok, _) in zip(targets, results, strict=True) if ok]
        self.producer.requeue((m.id, m.priority) for m in queued)
        return [m.id for m in queued]

    def settle_unknown(self, message_ids: list[str], *, outcome: str) -> list[str]:
        """An operator's verdict on UNKNOWN messages, after checking with LightSMS: "sent", "failed",
        or "resend" (queue it again: the operator accepts that it may arrive twice). The ids moved."""
        now = time.time()
        ttl = self.producer.store.record_ttl
        verdicts = {
            "sent": (State.SENT, 0.0, ttl, (("error_meaning", "confirmed sent by an operator"),)),
            "failed": (
                State.FAILED,
                0.0,
                ttl,
                (("error_code", "operator"), ("error_meaning", "marked failed by an operator")),
            ),
            "resend": (State.QUEUED, now, 0, (("queued_at", now),)),
        }
        if outcome not in verdicts:
            raise ValueError(f"outcome must be one of {', '.join(verdicts)}")
        state, score, ttl, fields = verdicts[outcome]
        targets = self._existing(message_ids)
        moves = [Move(m.id, (State.UNKNOWN,), state, score=score, ttl=ttl, fields=fields) for m in targets]
        results = self.producer.store.apply(moves)
        moved = [m for m, (ok, _) in zip(targets, results, strict=True) if ok]
        if state is State.QUEUED:
            self.producer.requeue((m.id, m.priority) for m in moved)
        return [m.id for m in moved]

    def purge_dead(self, message_ids: list[str] | None = None) -> tuple[int, int]:
        """Delete DEAD records for good, releasing each one's idempotency key while it still names
        that message (a caller may then use the key again); (records deleted, keys released)."""
        targets = self.dead() if message_ids is None else self._existing(message_ids)
        results = self.producer.store.purge([m for m in targets if m.state is State.DEAD])
        return sum(purged for purged, _ in results), sum(released for _, released in results)

    def _existing(self, message_ids: list[str]) -> list[Message]:
        return [m for m in self.producer.store.get_many(message_ids) if m is not None]
