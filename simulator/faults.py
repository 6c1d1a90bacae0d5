"""The per-request fault lottery: which injected failure, if any, a request gets."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.state import SimState

__all__ = ["Decision", "decide"]

HTTP_500, HTTP_503, HTTP_429 = "http:500", "http:503", "http:429"
STALL, RESET = "stall", "reset"


@dataclass(frozen=True)
class Decision:
    kind: str | None  # one of the constants above, or None for a normal answer
    latency: float = 0.0  # seconds to wait before answering
    stall_seconds: float = 0.0


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
        draw = state.random.random()
        for kind, rate in (
            (HTTP_500, faults.http_500_rate),
            (HTTP_503, faults.http_503_rate),
            (HTTP_429, faults.http_429_rate),
            (STALL, faults.stall_rate),
            (RESET, faults.reset_rate),
        ):
            if draw < rate:
                return Decision(kind, latency, faults.stall_seconds)
            draw -= rate
        return Decision(None, latency)
