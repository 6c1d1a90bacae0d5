"""Worker integration fixtures: each test module gets its own Redis (AOF on) and its own stack, so
killing or flushing things in one module never reaches another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture(scope="module")
def running_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    """One worker and beat, shared by the tests of a module."""
    stack = Stack(module_redis, sim_process)
    try:
        stack.start_worker("w1")
        stack.start_beat()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(running_stack: Stack) -> Stack:
    running_stack.reset()
    return running_stack
