"""The global limiter under contention: four worker processes (each `celery -A worker worker`, the
default threads) and beat at LIGHTSMS_MAX_RPS=50, the simulator enforcing the same 50 requests in any
sliding second (fault max_rps: it answers HTTP 429 past it). A backlog of single send() calls large
enough to keep them busy for the whole measured window of 30 s from the first request.

Reported from the simulator's request log (arrival times on its clock): the most requests in any
one-second window, the requests served in the 30 s window as a share of the 1,500 allowed, and
refusals (HTTP 429: throttled by max_rps, or injected) over the whole run.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

from bench._common import RUNS, BenchStack, Figure, accepted_times, compose_redis, phones, simulator

__all__ = ["main"]

RATE = 50
WORKERS = 4
WINDOW = 30.0
MESSAGES = int(RATE * WINDOW * 1.2)  # a backlog that outlasts the window
TEXT = "Your code is 1234"
REFUSED = ("throttled", "http:429")


def _analyse(entries: list[dict[str, Any]]) -> dict[str, float]:
    limited = sorted((e for e in entries if e["endpoint"] != "timestamp"), key=lambda e: e["time"])
    times = [float(e["time"]) for e in limited]
    first_send = min(float(e["time"]) for e in limited if e["endpoint"] == "send")
    end = first_send + WINDOW
    in_window = [e for e in limited if first_send <= e["time"] < end]
    served = sum(1 for e in in_window if e["outcome"] not in REFUSED)
    # Every window [t, t + 1 s) that starts at a request holds the most requests of any window near it.
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    # How much of the margin's room the bunching left: the request RATE places after each one comes
    # this long after that one's second ends, at the least (below 0: a second held more than RATE).
    room = min(times[i + RATE] - times[i] for i in range(len(times) - RATE)) - 1.0
    return {
        "max_per_second": float(busiest),
        "least_room_ms": room * 1000,
        "share": served / (RATE * WINDOW),
        "refusals": float(sum(1 for e in limited if e["outcome"] in REFUSED)),
        "served_in_window": float(served),
    }


def main() -> dict[str, Figure]:
    results: list[dict[str, float]] = []
    with compose_redis() as redis_server, simulator() as sim:
        stack = BenchStack(redis_server, sim, LIGHTSMS_MAX_RPS=str(RATE))
        try:
            stack.start_workers(WORKERS, name="limited")
            stack.start_beat()
            for run in range(RUNS):
                stack.reset_sim(max_rps=RATE)
                for phone in phones(MESSAGES, start=100_000 + run * MESSAGES):
                    stack.producer.send(phone, TEXT)
                accepted_times(stack.admin, MESSAGES, timeout=WINDOW * 4, interval=1.0)
                time.sleep(0.5)
                results.append(_analyse(stack.admin.requests()))
        finally:
            stack.stop()
    per_run = {"served_in_window": [r["served_in_window"] for r in results]}
    return {
        "limiter_max_per_second": Figure(f"{WORKERS} workers at LIGHTSMS_MAX_RPS={RATE}: most requests at the "
                                         "simulator in any 1 s window", "req", [r["max_per_second"] for r in results]),
        "limiter_share": Figure(f"requests served in the {WINDOW:g} s window / {RATE * WINDOW:,.0f} allowed", "share",
                                [r["share"] for r in results], per_run),
        "limiter_refusals": Figure(f"HTTP 429 from the simulator enforcing {RATE}/s (sliding 1 s)", "req",
                                   [r["refusals"] for r in results]),
        "limiter_least_room": Figure(f"least room left in any second: the time from a request to the {RATE}th after "
                                     "it, less 1 s (the margin's room less the bunching)", "ms",
                                     [r["least_room_ms"] for r in results]),
    }  # fmt: skip


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
