"""kill -9 of a worker mid-batch, then a restart: with the default lease and requeue settings, every
message the killed worker held is SENT (or queued again and sent) or UNKNOWN within 60 s of the kill,
and the simulator never accepted one message twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core import keys
from core.settings import Settings
from core.states import State
from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones

RECOVERY_SETTINGS = ("lightsms_lease_seconds", "lightsms_requeue_after", "lightsms_sweep_interval")
RECOVERY_LIMIT = 60.0


@pytest.fixture
def own_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    # Recovery is measured with the defaults of everything it depends on, not the short test values.
    defaults = {name.upper(): str(Settings.model_fields[name].default) for name in RECOVERY_SETTINGS}
    stack = Stack(module_redis, sim_process, **defaults)
    stack.reset()
    try:
        stack.start_beat()
        yield stack
    finally:
        stack.stop()


def test_kill_9_mid_batch_then_restart(own_stack: Stack):
    stack = own_stack
    stack.admin.faults(latency_ms=400)  # every send.php call is mid-flight for a while
    worker = stack.start_worker("victim")
    numbers = phones(400)
    ids = stack.producer.send_many(numbers[:300], "bulk before the crash")
    ids += [stack.producer.send(p, "single before the crash") for p in numbers[300:]]

    def some_mid_flight() -> bool:
        states = [m.state for m in stack.messages(ids)]
        return states.count(State.SENDING) > 0 and states.count(State.SENT) > 0

    wait_until(some_mid_flight, timeout=30, interval=0.02, message="no batch was mid-flight")
    worker.kill9()
    killed_at = time.monotonic()
    assert not worker.alive
    stack.processes.remove(worker)
    stack.admin.faults(latency_ms=0)
    stack.start_worker("after")

    settled = frozenset({State.SENT, State.UNKNOWN, State.FAILED})
    messages = stack.wait_settled(ids, timeout=120, settled=settled)
    recovery = time.monotonic() - killed_at
    accepted = stack.accepted_by_phone()
    assert max(accepted.values()) == 1, "a message was accepted twice"
    assert set(accepted) <= set(numbers)
    states = [m.state for m in messages]
    assert State.FAILED not in states
    for m in messages:
        if m.state is State.SENT:
            assert accepted.get(m.phone) == 1
    unknown = [m for m in messages if m.state is State.UNKNOWN]
    assert all(m.error_code == "lease_expired" for m in unknown)
    print(f"\nkill -9: every message settled {recovery:.1f} s after the kill: {states.count(State.SENT)} SENT, "
          f"{len(unknown)} UNKNOWN ({sum(1 for m in unknown if m.phone in accepted)} of them accepted by the "
          "simulator)")  # fmt: skip
    assert recovery < RECOVERY_LIMIT, f"recovery took {recovery:.1f} s"


def test_kill_9_while_waiting_to_retry_a_refused_request_then_restart(
    module_redis: RedisServer, sim_process: SimProcess
) -> None:
    """Every send.php refused with HTTP 503 (provably never reached LightSMS): the worker waits to
    try again with nothing marked in flight, so its kill -9 in that wait leaves messages the sweeper
    queues again, and they are sent once each, none held UNKNOWN."""
    stack = Stack(module_redis, sim_process, LIGHTSMS_RETRY_WINDOW="6", LIGHTSMS_LEASE_SECONDS="10")
    stack.reset()
    try:
        stack.start_beat()
        stack.admin.faults(http_503_rate=1.0)
        worker = stack.start_worker("refused")
        numbers = phones(3, start=7_300)
        ids = stack.producer.send_many(numbers, "code before the crash")
        hashes = [keys.message(i) for i in ids]

        def waiting_to_retry() -> bool:
            refused = len(stack.admin.requests("send")) >= 2  # a retry was made: the wait between is known
            marks = [stack.redis.hmget(h, "state", "inflight") for h in hashes]
            return refused and marks == [["SENDING", "0"]] * 3

        wait_until(waiting_to_retry, timeout=30, interval=0.01, message="never between attempts unmarked")
        worker.kill9()
        stack.processes.remove(worker)
        assert [stack.redis.hmget(h, "state", "inflight") for h in hashes] == [["SENDING", "0"]] * 3
        stack.admin.faults(http_503_rate=0)
        stack.start_worker("after")
        messages = stack.wait_settled(ids, timeout=60, settled=frozenset({State.SENT, State.UNKNOWN, State.DEAD}))
        assert [m.state for m in messages] == [State.SENT] * 3
        assert stack.accepted_by_phone() == dict.fromkeys(numbers, 1)
    finally:
        stack.stop()
