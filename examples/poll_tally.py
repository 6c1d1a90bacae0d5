"""A poll: subscribers text A, B, C or D; one vote per number, tallied in Redis; anything else is
ignored. `lightsms-queue consume --keywords examples.poll_tally:handle` (POLL_NAME names the poll).

The first answer from a number counts, and a redelivered event counts nothing more: the vote and the
count are one Lua script, so a crash between them cannot lose or double one.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from consumers.autoreply import phone_digest
from core.redis_client import store_client
from core.settings import load_core_settings

ANSWERS = ("A", "B", "C", "D")
# KEYS[1] votes hash (voter digest -> answer), KEYS[2] tally hash (answer -> count)
# ARGV[1] voter digest, ARGV[2] answer. Returns the new count, or false when this voter already voted.
_VOTE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  return redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return false
"""


class PollTally:
    def __init__(self, client: redis.Redis, *, poll: str = "poll") -> None:
        self.redis = client
        self.votes_key = f"example:poll:{poll}:votes"  # voters by a digest of their number, never in clear
        self.tally_key = f"example:poll:{poll}:tally"
        self._vote = client.register_script(_VOTE)

    def __call__(self, event: dict[str, Any]) -> str | None:
        """The answer counted, or None (not an answer, or this number has voted already)."""
        text = event.get("text")
        answer = text.strip().upper() if isinstance(text, str) else ""
        if answer not in ANSWERS:
            return None
        voter = phone_digest(str(event.get("sender", "")))
        counted = self._vote(keys=[self.votes_key, self.tally_key], args=[voter, answer])
        return answer if counted else None

    def results(self) -> dict[str, int]:
        counts = self.redis.hmget(self.tally_key, list(ANSWERS))
        return {answer: int(count or 0) for answer, count in zip(ANSWERS, counts, strict=True)}


_handler: PollTally | None = None


def handle(event: dict[str, Any]) -> str | None:
    global _handler
    if _handler is None:  # built on first use, from REDIS_URL and POLL_NAME
        client = store_client(load_core_settings(), decode_responses=True)
        _handler = PollTally(client, poll=os.environ.get("POLL_NAME", "poll"))
    return _handler(event)
