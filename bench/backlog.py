"""A backlog at LightSMS's default rate: 600 single send() calls enqueued at once with
LIGHTSMS_MAX_RPS=10, one worker and beat. The ideal drain is 60 s; a message waiting for the limiter
should not cycle through claim, defer, due set and queue again and again, so the Redis commands per
message (INFO commandstats over the whole drain, broker and beat included) show any churn.
"""

from __future__ import annotations

import time

from bench._common import (
    RUNS,
    BenchStack,
    Figure,
    accepted_times,
    command_calls,
    commands_delta,
    compose_redis,
    phones,
    simulator,
)
from core import keys

__all__ = ["main"]

RATE = 10
MESSAGES = 600
TEXT = "Your code is 1234"


def _counters(stack: BenchStack) -> dict[str, int]:
    raw: dict[str, str] = stack.redis.hgetall(keys.STATS)  # type: ignore[assignment]  # decode_responses
    return {name: int(value) for name, value in raw.items() if value.lstrip("-").isdigit()}


def main() -> dict[str, Figure]:
    ideal = MESSAGES / RATE
    drains, commands, enqueue_seconds = [], [], []
    breakdown: list[dict[str, int]] = []
    counter_deltas: list[dict[str, int]] = []
    with compose_redis() as redis_server, simulator() as sim:
        stack = BenchStack(redis_server, sim, LIGHTSMS_MAX_RPS=str(RATE))
        try:
            stack.start_workers(1)
            stack.start_beat()
            stack.reset_sim()
            stack.producer.send(phones(1, start=900_000)[0], "warm-up")
            accepted_times(stack.admin, 1, timeout=60)
            time.sleep(1.0)
            for run in range(RUNS):
                stack.reset_sim()
                batch = phones(MESSAGES, start=100_000 + run * MESSAGES)
                before, counters = command_calls(stack.redis), _counters(stack)
                started = time.time()
                for phone in batch:
                    stack.producer.send(phone, TEXT)
                enqueue_seconds.append(time.time() - started)
                accepted = accepted_times(stack.admin, MESSAGES, timeout=ideal * 3, interval=1.0)
                time.sleep(0.5)  # the last replies settled in Redis
                delta = commands_delta(before, command_calls(stack.redis))
                after = _counters(stack)
                drains.append(max(accepted.values()) - started)
                commands.append(delta["_total"] / MESSAGES)
                breakdown.append(delta)
                counter_deltas.append({k: v - counters.get(k, 0) for k, v in after.items() if v != counters.get(k, 0)})
        finally:
            stack.stop()
    return {
        "backlog_drain_seconds": Figure(f"{MESSAGES} single send() at LIGHTSMS_MAX_RPS={RATE}: first enqueue to last "
                                        f"acceptance (ideal {ideal:g} s)", "s", drains,
                                        {"ideal_seconds": ideal, "enqueue_seconds": enqueue_seconds,
                                         "counter_deltas": counter_deltas}),
        "backlog_commands_per_message": Figure("Redis commands per message over that drain", "cmd/msg", commands,
                                               {"commands_per_run": breakdown}),
    }  # fmt: skip


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}", value.detail.get("counter_deltas", ""))
