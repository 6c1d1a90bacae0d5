"""poll_incoming in real processes: Celery beat ticking, workers polling on their poll threads, the
simulator over HTTP, a module Redis; events read with plain kombu as a service without this package
would. And a poller killed with kill -9 mid-poll, in a helper process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import keys
from devtools.polling import wait_until
from devtools.stack import Stack

from .inbound_support import drain, local, poller_settings, wait_for_events

SENDER = "37061234567"
ROOT = Path(__file__).resolve().parents[2]

# Polls every second, reading 5 s back; incoming.php answers within 5 s (the two-beat test slows it).
OVERRIDES = {"LIGHTSMS_INCOMING_INTERVAL": "1", "LIGHTSMS_INCOMING_OVERLAP": "5",
             "LIGHTSMS_INCOMING_BACKFILL": "60", "LIGHTSMS_READ_TIMEOUT": "5"}  # fmt: skip


def cursor(stack: Stack) -> float | None:
    raw = stack.redis.get(keys.INBOUND_CURSOR)
    return None if raw is None else float(raw)


def incoming(count: int, *, start: int, at: float | None = None) -> list[dict[str, str]]:
    extra = {} if at is None else {"date": local(at)}
    return [{"sender": SENDER, "phone": "5163251632", "text": f"sms {start + i}", **extra} for i in range(count)]


# -- a poller killed mid-poll (a helper process, no beat) ------------------------------------------

KILLED_POLL = """
import os, signal, sys
from tests.worker.inbound_support import make_poller, poller_settings

poller = make_poller(poller_settings(os.environ["REDIS_URL"], os.environ["LIGHTSMS_BASE_URL"]))
poller.lock_ttl = 1.0  # the lock a killed poller leaves expires in a second, not a minute
where, after = sys.argv[1], int(sys.argv[2])
kill = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if where == "before-cursor":  # every item published and marked seen; the cursor script never runs
    poller._advance = kill
else:  # "after-publish": killed right after the `after`-th publish, before its seen mark
    real, published = poller.publisher.publish, []
    def publish(queue, event, **kwargs):
        real(queue, event, **kwargs)
        published.append(event["id"])
        if len(published) == after:
            kill()
    poller.publisher.publish = publish
poller.poll()
sys.exit("the poll was not killed")
"""


def run_killed_poll(redis_url: str, base_url: str, where: str, after: int = 0) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "LIGHTSMS_BASE_URL": base_url}
    done = subprocess.run([sys.executable, "-c", KILLED_POLL, where, str(after)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]


@pytest.mark.parametrize("where", ["before-cursor", "after-publish"])
def test_a_poller_killed_before_moving_the_cursor_loses_nothing(redis_server, redis_client, sim_admin, sim_process,
                                                                where):  # fmt: skip
    from .inbound_support import make_poller

    settings = poller_settings(redis_server.url, sim_process.base_url)
    earlier = sim_admin.incoming(incoming(5, start=0))
    assert make_poller(settings).poll() == {"published": 5}
    old_cursor = redis_client.get(keys.INBOUND_CURSOR)
    ids = sim_admin.incoming(incoming(20, start=5))
    run_killed_poll(redis_server.url, sim_process.base_url, where, after=20)
    assert redis_client.get(keys.INBOUND_CURSOR) == old_cursor  # killed before it moved
    # The killed poller's lock expires; the next poll reads the same window again.
    wait_until(lambda: redis_client.get(keys.poll_lock("incoming")) is None, timeout=5, message="the lock to expire")
    counts = make_poller(settings).poll()
    events = [e["id"] for e in drain(settings.broker_url)]
    assert sorted(set(events), key=int) == earlier + ids  # nothing lost
    if where == "before-cursor":
        assert counts == {"duplicates": 25} and events == earlier + ids  # nothing published twice
    else:
        # The documented micro-window: the one event published but not yet marked seen comes again
        # (consumers dedupe by its id); every other one is not.
        assert counts == {"published": 1, "duplicates": 24}
        assert events == earlier + ids + [ids[-1]]
    assert float(redis_client.get(keys.INBOUND_CURSOR)) > float(old_cursor)


# -- beat and workers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inbound_stack(module_redis, sim_process) -> Iterator[Stack]:
    stack = Stack(module_redis, sim_process, **OVERRIDES)
    try:
        stack.start_worker("in1")
        stack.start_beat()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(inbound_stack: Stack) -> Stack:
    inbound_stack.reset()
    # A poll in flight during the reset may still publish what it read before; the poll after the
    # next cursor move began after it ended. Then the queue holds all it will of the old state.
    first = wait_until(lambda: cursor(inbound_stack), timeout=15, message="a poll after the reset")
    wait_until(lambda: (cursor(inbound_stack) or 0) > first, timeout=15, message="a second poll after the reset")
    drain(inbound_stack.redis_server.url)
    return inbound_stack


def test_500_incoming_over_several_polls_consumed_once_each_in_order_of_arrival(stack):
    url = stack.redis_server.url
    injected: list[str] = []
    consumed: list[str] = []
    late_dated = 0
    for round_number in range(5):
        before = cursor(stack)
        assert before is not None
        # 20 dated 3 s back, earlier than the last poll's end (the cursor) but inside the 5 s overlap:
        # only the overlap reads them. Then 80 dated now. Each lot arrives in this order.
        backdated = time.time() - 3
        late_dated += 20 if backdated < before else 0
        start = round_number * 100
        injected += stack.admin.incoming(incoming(20, start=start, at=backdated) + incoming(80, start=start + 20))
        consumed += [e["id"] for e in wait_for_events(url, 100, timeout=15, settle=0)]
    consumed += [e["id"] for e in wait_for_events(url, 0, timeout=0, settle=2.5)]  # polls go on: nothing more
    assert len(injected) == 500 and late_dated >= 20
    duplicates = {sms_id: n for sms_id, n in Counter(consumed).items() if n > 1}
    assert not duplicates
    assert consumed == injected  # each once, in order of arrival


def test_two_beats_and_two_workers_never_poll_at_once_or_publish_twice(stack):
    url = stack.redis_server.url
    stack.start_worker("in2")
    stack.start_beat()  # the second beat: RedBeat lets one of them schedule
    # Each incoming.php call now takes 2.5 s while beat ticks every second: ticks reach the other
    # worker while a poll is running, and only the lock keeps them from polling alongside.
    latency = 2.5
    slowed = time.time()
    stack.admin.faults(endpoints=["incoming"], latency_ms=latency * 1000)
    injected = stack.admin.incoming(incoming(100, start=0))
    events = [e["id"] for e in wait_for_events(url, 100, timeout=30, settle=latency * 2 + 1)]

    def slow_arrivals() -> list[float] | None:
        found = sorted(r["time"] for r in stack.admin.requests("incoming") if r["time"] > slowed + 0.05)
        return found if len(found) >= 3 else None

    # Three slowed polls at least, however loaded the machine (a poll may start late, never early).
    arrivals = wait_until(slow_arrivals, timeout=30, interval=0.2)
    stack.admin.faults(latency_ms=0)
    assert events == injected
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # A poll holds the lock until its reply is in: the next request comes at least `latency` later.
    assert min(gaps) >= latency * 0.95, gaps
    # And there were polls the lock turned away, so the gaps are its doing, not the ticks' spacing.
    workers = [p for p in stack.processes if p.name.startswith("worker-")]
    assert any("another poll holds the lock" in p.log_path.read_text() for p in workers)
