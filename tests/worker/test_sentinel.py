"""Redis Sentinel: producers, a worker and beat find the store, the broker and RedBeat's Redis through
a real sentinel, with REDIS_URL's host pointing nowhere (only its password and database count)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.states import State
from devtools.ports import free_port
from devtools.processes import ManagedProcess
from devtools.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones


@pytest.fixture(scope="module")
def sentinel(module_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    config = Path(tmp_path_factory.mktemp("sentinel")) / "sentinel.conf"
    config.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {module_redis.port} 1\n")
    process = ManagedProcess([module_redis.executable, str(config), "--sentinel"], name="sentinel",
                             ready=r"\+monitor master mymaster")  # fmt: skip
    process.start()
    try:
        process.wait_ready(timeout=20)
        yield port
    finally:
        process.terminate(timeout=10)


def test_sends_and_scheduled_sends_through_a_sentinel(module_redis, sim_process: SimProcess, sentinel: int):
    stack = Stack(module_redis, sim_process, REDIS_URL="redis://nowhere.invalid:1/0",
                  REDIS_SENTINELS=f"127.0.0.1:{sentinel}", REDIS_SENTINEL_MASTER="mymaster")  # fmt: skip
    assert stack.settings().broker_url == f"sentinel://127.0.0.1:{sentinel}/0"
    stack.reset()
    try:
        stack.start_worker("sentinel")
        stack.start_beat()
        numbers = phones(6, start=880)
        ids = [stack.producer.send(p, "through the sentinel") for p in numbers[:5]]
        ids.append(stack.producer.send(numbers[5], "scheduled, moved by beat", send_at=time.time() + 1.5))
        messages = stack.wait_settled(ids, timeout=40)
    finally:
        stack.stop()
    assert [m.state for m in messages] == [State.SENT] * 6
    assert sorted(stack.accepted_by_phone()) == sorted(numbers)
