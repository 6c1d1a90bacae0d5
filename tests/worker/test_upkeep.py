"""Upkeep never waits behind sends: with every send thread stuck in a reply that does not come, the
due mover and the sweeper still run."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from core import keys
from core.states import State
from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones

STALL = 25.0


@pytest.fixture(scope="module")
def stuck_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    # Two send threads, and a deadline long enough for a stalled reply to hold them both.
    stack = Stack(module_redis, sim_process, LIGHTSMS_WORKER_CONCURRENCY="2", LIGHTSMS_READ_TIMEOUT="30",
                  LIGHTSMS_REQUEST_DEADLINE="30", LIGHTSMS_LEASE_SECONDS="120")  # fmt: skip
    stack.reset()
    try:
        stack.start_worker("busy")
        stack.start_beat()
        yield stack
    finally:
        stack.admin.reset()
        stack.stop()


def test_the_due_mover_and_the_sweeper_run_while_every_send_thread_is_stuck(stuck_stack: Stack):
    stack = stuck_stack
    stack.admin.faults(stall_rate=1.0, stall_seconds=STALL)
    stuck = [stack.producer.send(phone, f"stuck {i}") for i, phone in enumerate(phones(2))]
    wait_until(lambda: len(stack.admin.requests("send")) == 2, timeout=15, message="both threads never got stuck")

    # A scheduled message falls due: only the due mover can queue it.
    scheduled = stack.producer.send(phones(1, start=10)[0], "due soon", send_at=time.time() + 1.5)
    # A message a lost worker left SENDING, its lease over and no request started: only the sweeper
    # can queue it again.
    orphan = stack.producer.send(phones(1, start=20)[0], "orphaned")
    past = stack.producer.store.now() - 1
    stack.redis.hset(keys.message(orphan), mapping={"state": "SENDING", "lease": "gone", "inflight": "0",
                                                   "lease_until": past})  # fmt: skip
    stack.redis.zrem(keys.queued_index("normal"), orphan)
    stack.redis.zadd(keys.SENDING_INDEX, {orphan: past})

    def both_queued() -> bool:
        states = [m.state for m in stack.messages([scheduled, orphan])]
        return states == [State.QUEUED, State.QUEUED]

    wait_until(both_queued, timeout=10, message="upkeep waited behind the stuck send threads")
    assert [m.state for m in stack.messages(stuck)] == [State.SENDING, State.SENDING]
    # and when the threads are free again, everything is sent
    stack.admin.faults(stall_rate=0.0)
    messages = stack.wait_settled([scheduled, orphan], timeout=STALL + 20)
    assert [m.state for m in messages] == [State.SENT, State.SENT]


def test_warm_shutdown_finishes_while_every_thread_is_in_a_reply_that_trickles(stuck_stack: Stack):
    stack = stuck_stack
    for busy in [p for p in stack.processes if p.name.startswith("worker-")]:
        busy.terminate(timeout=40)
        stack.processes.remove(busy)
    stack.reset()
    worker = stack.start_worker("trickled", LIGHTSMS_READ_TIMEOUT="1", LIGHTSMS_REQUEST_DEADLINE="3")
    stack.admin.faults(trickle_rate=1.0, trickle_interval=0.3)
    ids = [stack.producer.send(phone, f"trickled {i}") for i, phone in enumerate(phones(2, start=40))]
    wait_until(lambda: len(stack.admin.requests("send")) >= 2, timeout=15, message="sends never started")

    worker.send_signal(signal.SIGTERM)
    # warm shutdown waits for the running sends: each is cut off at its 3 s deadline
    assert worker.wait_exit(timeout=15) == 0
    stack.processes.remove(worker)
    stack.admin.faults(trickle_rate=0.0)
    assert [m.state for m in stack.messages(ids)] == [State.UNKNOWN, State.UNKNOWN]
