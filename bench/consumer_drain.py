"""A consumer draining a backlog of events: events per second, the consumer's CPU and Redis commands
per event.

Real processes: redis-server (AOF, like compose) and `lightsms-queue consume bench.consumer_drain:skip`
(a handler that does nothing, so that what is measured is the consumer: taking, the handled key,
settling). The events are published first; the clock runs from the consumer being ready to the
queue drained with nothing held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench._common import command_calls, commands_delta
from core import keys
from core.contract import event_queue, inbound_event
from core.events import EventPublisher, broker_connection
from core.settings import CoreSettings
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from devtools.redis_server import RedisServer

__all__ = ["main", "skip"]

EVENTS = 5000
QUEUE = "sms.inbound"
ROOT = Path(__file__).resolve().parents[1]


def skip(event: dict[str, Any]) -> None:
    """The handler: nothing, on purpose."""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main() -> dict[str, str]:
    with RedisServer(appendonly=True) as server:
        env = {"REDIS_URL": server.url, "CELERY_BROKER_URL": server.url}
        settings: dict[str, Any] = {"redis_url": server.url, "celery_broker_url": server.url}  # as make_producer
        publisher = EventPublisher(broker_connection(CoreSettings(**settings)))
        for n in range(EVENTS):
            publisher.publish(event_queue(QUEUE), inbound_event(sms_id=f"in-{n}", received_at="2026-03-01T10:00:00Z",
                              sender="37060000001", phone="5163251632", prefix=None, text="ping"))  # fmt: skip
        publisher.close()
        client = server.client()
        consumer = ManagedProcess([venv_executable("lightsms-queue"), "consume", f"{__name__}:skip"],
                                  name="bench-consumer", env=env, cwd=ROOT, ready="consuming")  # fmt: skip
        try:
            consumer.start()
            consumer.wait_ready(timeout=30)
            assert consumer.pid is not None
            before, cpu_before, started = command_calls(client), _cpu_seconds(consumer.pid), time.monotonic()
            polls = [0]

            def drained() -> bool:
                polls[0] += 1  # one LLEN each, taken off the count
                return int(client.llen(QUEUE)) == 0

            wait_until(drained, timeout=300, interval=0.05)
            took = time.monotonic() - started
            cpu = _cpu_seconds(consumer.pid) - cpu_before
            commands = commands_delta(before, command_calls(client), own=polls[0])["_total"]
            # The last event taken may still be in its handler: settled before the consumer stops.
            wait_until(lambda: not any(client.llen(k) for k in client.scan_iter(keys.consumer_held(QUEUE, "*"))),
                       timeout=30, message="nothing held")  # fmt: skip
        finally:
            consumer.terminate(timeout=10)
    return {
        f"consumer, {EVENTS:,} events of a no-op handler": f"{EVENTS / took:,.0f} events/s",
        "consumer CPU per event": f"{cpu * 1000 / EVENTS:.2f} ms",
        "Redis commands per event (take, handled key, settle)": f"{commands / EVENTS:.1f}",
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
