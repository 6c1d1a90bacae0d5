"""The per-request fault lottery: which injected failure, if any, a request gets."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.state import SimState

__all__ = ["Decision", "Reply", "decide"]

HTTP_500, HTTP_503, HTTP_429 = "http:500", "http:503", "http:429"
STALL, RESET, TRICKLE = "stall", "reset", "trickle"


@dataclass(frozen=True)
class Reply:
    """A reply that replaces the real one (reply_body): exactly this status, body and type."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Decision:
    kind: str | None  # one of the constants above, or None for a normal answer
    latency: float = 0.0  # seconds to wait before answering
    stall_seconds: float = 0.0
    trickle_interval: float = 0.0
    reply: Reply | None = None  # answer this instead of the real reply (after processing normally)


NO_FAULT = Decision(None)


def decide(state: SimState, endpoint: str) -> Decision:
    """Draw once for a request to `endpoint`; consumes one unit of `count` when the faults apply."""
    with state.lock:
        faults = state.faults
        if endpoint not in faults.endpoints:
            return NO_FAULT
        latency = faults.latency_ms / 1000
        if faults.count is not None:
            if faults.count <= 0:
                return Decision(None, latency)
            faults.count -= 1
        reply = None
        if faults.reply_body is not None:
            reply = Reply(faults.reply_status, faults.reply_body.encode(), faults.reply_content_type)
        draw = state.random.random()
        kind = None
        for candidate, rate in (
            (HTTP_500, faults.http_500_rate),
            (HTTP_503, faults.http_503_rate),
            (HTTP_429, faults.http_429_rate),
            (STALL, faults.stall_rate),
            (RESET, faults.reset_rate),
            (TRICKLE, faults.trickle_rate),
        ):
            if draw < rate:
                kind = candidate
                break
            draw -= rate
        return Decision(kind, latency, faults.stall_seconds, faults.trickle_interval, reply)
