"""Redis (with AOF) restarted mid-run: workers reconnect and nothing is lost."""

from __future__ import annotations

from producers.states import State
from tests.support.polling import wait_until
from tests.worker.stack import Stack, phones


def test_redis_restart_mid_run_loses_nothing(stack: Stack):
    stack.admin.faults(latency_ms=100)
    numbers = phones(300)
    ids = stack.producer.send_many(numbers[:200], "before the restart")
    ids += [stack.producer.send(p, "before the restart, alone") for p in numbers[200:]]
    wait_until(lambda: len(stack.admin.messages()) >= 20, timeout=30, message="sending never started")

    stack.redis_server.kill()
    stack.redis_server.restart()
    stack.admin.faults(latency_ms=0)

    messages = stack.wait_settled(ids, timeout=120)
    assert {m.state for m in messages} == {State.SENT}
    accepted = stack.accepted_by_phone()
    assert sorted(accepted) == sorted(numbers)
    assert set(accepted.values()) == {1}
