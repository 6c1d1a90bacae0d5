"""Redis (with AOF) restarted mid-run: workers, their upkeep and beat reconnect, and nothing is lost,
stuck or sent twice."""

from __future__ import annotations

import time

from core.states import State
from tests.support.polling import wait_until
from tests.worker.stack import Stack, phones

OUTAGE = 8.0  # seconds Redis stays down: longer than a blip, well within what the send path rides out


def test_redis_down_mid_run_loses_nothing_and_every_message_settles(stack: Stack):
    second = stack.start_worker("w2")
    beat = next(p for p in stack.processes if p.name == "beat")
    stack.admin.faults(latency_ms=100)
    numbers = phones(300)
    ids = stack.producer.send_many(numbers[:200], "before the restart")
    ids += [stack.producer.send(p, "before the restart, alone") for p in numbers[200:]]
    wait_until(lambda: len(stack.admin.messages()) >= 20, timeout=30, message="sending never started")

    stack.redis_server.kill()
    time.sleep(OUTAGE)  # the outage itself, not a wait for anything
    stack.redis_server.restart()
    stack.admin.faults(latency_ms=0)

    # Within the recovery time of these settings (lease 16 s, sweeps every second), all settle.
    messages = stack.wait_settled(ids, timeout=90)
    # Requests answered while Redis was down had their results kept until it came back.
    assert {m.state for m in messages} == {State.SENT}
    accepted = stack.accepted_by_phone()
    assert sorted(accepted) == sorted(numbers)
    assert set(accepted.values()) == {1}, "a message was sent twice"
    assert beat.alive and second.alive
    # and the stack still works afterwards
    [after] = stack.wait_settled([stack.producer.send(phones(1, start=900)[0], "after")], timeout=30)
    assert after.state is State.SENT
    second.terminate(timeout=10)
    stack.processes.remove(second)
