"""Fixtures every test package may use: a real Redis server and the LightSMS simulator.

Both are session-scoped and start only when a test asks for them, so unit tests pay nothing
(the support modules that import redis/requests are imported inside the fixtures). Per-package
conftest files add their own fixtures (workers, beat, ...) on top of these.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.processes import ManagedProcess, live_processes

if TYPE_CHECKING:
    import redis

    from tests.support.redis_server import RedisServer
    from tests.support.sim_process import SimAdmin, SimProcess

LOG_TAIL_LINES = 40


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, AOF on with fsync on every write."""
    from tests.support.redis_server import RedisServer

    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client (decode_responses=True) of the session server, with every database flushed first.

    If an earlier test killed the shared server, it is restarted here rather than failing
    every test after it.
    """
    if not redis_server.alive:
        redis_server.restart()
    client = redis_server.client(decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sim_process() -> Iterator[SimProcess]:
    """One simulator process for the session (login "demo", api key "demo-key")."""
    from tests.support.sim_process import SimProcess

    with SimProcess() as sim:
        yield sim


@pytest.fixture
def sim_admin(sim_process: SimProcess) -> Iterator[SimAdmin]:
    """Admin client of the session simulator, reset to its start-up state before the test."""
    if not sim_process.alive:
        sim_process.start()  # a new port: read sim_process.base_url after this fixture
    admin = sim_process.admin()
    admin.reset()
    yield admin
    admin.close()


# -- on failure, show what the child processes said -------------------------------------------

_BEFORE = pytest.StashKey[tuple[float, dict[ManagedProcess, int]]]()


def _log_size(process: ManagedProcess) -> int:
    try:
        return process.log_path.stat().st_size
    except OSError:
        return 0


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_BEFORE] = (time.monotonic(), {p: _log_size(p) for p in live_processes()})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _BEFORE in item.stash:
        since, sizes = item.stash[_BEFORE]
        for process in live_processes():
            # Only processes this test touched: started or ended during it, or said something new.
            started_here = process.started_at is not None and process.started_at >= since
            ended_here = not process.alive and process.ended_at is not None and process.ended_at >= since
            if started_here or ended_here or _log_size(process) != sizes.get(process, 0):
                title = f"{process.name} (pid {process.pid}) log tail: {Path(process.log_path)}"
                report.sections.append((title, process.log_tail(LOG_TAIL_LINES)))
    return report
