"""From an incoming SMS appearing at the simulator to a consumer's handler running it.

Real processes: redis-server (AOF), `lightsms-sim`, `celery -A worker worker` and beat (the poller
runs on the worker's poll thread, ticked by beat), and `lightsms-queue consume` running `record`
below. SMS are injected at spread-out moments; each one's latency is the handler's clock minus the
moment the simulator took it. Measured with the default LIGHTSMS_INCOMING_INTERVAL (30 s) and 2 s.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from typing import Any

import redis

from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from devtools.redis_server import RedisServer
from devtools.sim_process import SimProcess
from devtools.stack import Stack

__all__ = ["main", "record"]

HANDLED = "bench:inbound:handled"  # hash: incoming id -> unix time the handler ran
RUNS = ((30.0, 8, 7.3), (2.0, 20, 0.7))  # (poll interval, SMS injected, seconds between them)


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def record(event: dict[str, Any]) -> None:
    """The handler: note when it ran, by the event's id."""
    _redis().hset(HANDLED, str(event["id"]), repr(time.time()))


def _measure(redis_server: RedisServer, sim: SimProcess, *, interval: float, count: int, spacing: float) -> list[float]:
    stack = Stack(redis_server, sim, LIGHTSMS_INCOMING_INTERVAL=str(interval), LIGHTSMS_INCOMING_OVERLAP="120")
    consumer = ManagedProcess([venv_executable("lightsms-queue"), "consume", "bench.inbound_latency:record"],
                              name="bench-consumer", env=stack.env)  # fmt: skip
    try:
        stack.reset()
        stack.start_worker("bench-inbound")
        stack.start_beat()
        consumer.start()
        injected: dict[str, float] = {}
        for _ in range(count):
            started = time.time()
            [sms_id] = stack.admin.incoming([{"sender": "37060000001", "phone": "5163251632", "text": "ping"}])
            injected[sms_id] = started
            time.sleep(spacing)  # spreading arrivals over the poll period is the point, not a wait for a result
        handled = wait_until(lambda: _all_handled(stack.redis, injected), timeout=interval * 3 + 60, interval=0.2)
        return [float(handled[sms_id]) - at for sms_id, at in injected.items()]
    finally:
        consumer.terminate(timeout=10)
        stack.stop()


def _all_handled(client: redis.Redis, injected: dict[str, float]) -> dict[str, str] | None:
    handled = {_text(k): _text(v) for k, v in client.hgetall(HANDLED).items()}
    return handled if all(sms_id in handled for sms_id in injected) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def main() -> dict[str, str]:
    results: dict[str, str] = {}
    with RedisServer(appendonly=True) as redis_server, SimProcess() as sim:
        for interval, count, spacing in RUNS:
            latencies = sorted(_measure(redis_server, sim, interval=interval, count=count, spacing=spacing))
            results[f"incoming SMS -> handler, LIGHTSMS_INCOMING_INTERVAL={interval:g}"] = (
                f"median {statistics.median(latencies):.1f} s, max {latencies[-1]:.1f} s over {count} SMS"
            )
    return results


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
