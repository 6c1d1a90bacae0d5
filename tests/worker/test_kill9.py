"""kill -9 of a worker mid-batch, then a restart: every message reaches a final state or UNKNOWN, and
the simulator never accepted one message twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.states import State
from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones


@pytest.fixture
def own_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    stack = Stack(module_redis, sim_process)
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
    assert not worker.alive
    stack.processes.remove(worker)
    stack.admin.faults(latency_ms=0)
    stack.start_worker("after")

    settled = frozenset({State.SENT, State.UNKNOWN, State.FAILED})
    messages = stack.wait_settled(ids, timeout=90, settled=settled)
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
    print(f"\nkill -9: {states.count(State.SENT)} SENT, {len(unknown)} UNKNOWN "
          f"({sum(1 for m in unknown if m.phone in accepted)} of them accepted by the simulator)")  # fmt: skip
