"""`celery -A worker beat` across Redis outages (worker/beat.py): it stays up with one log line per outage,
schedules again by itself once Redis is back (with its AOF data, or empty), and of two beats only the lock holder
schedules, before and after the outage.

Real redis-server and real beat processes; no worker runs, so beat's move_due tasks pile up on the broker list
`sms.maintenance` where the test can count them. Which beat scheduled what is read from each beat's own log.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from core.contract import MAINTENANCE_QUEUE, MOVE_DUE_TASK
from tests.support.polling import wait_until
from tests.support.processes import ManagedProcess, venv_executable
from tests.support.redis_server import RedisServer
from tests.worker.stack import TEST_ENV

# How long Redis stays down. The scheduler is built for outages of a minute or more (its retries back off to
# one attempt every 2 s and never give up); 20 s keeps the suite fast and still outlasts redis-py's own retries.
OUTAGE = 20.0
SHORT_OUTAGE = 4.0
SENT_MOVE_DUE = re.compile(r"Scheduler: Sending due task move-due \(lightsms\.move_due\)")
OUTAGE_LINE = "beat: Redis unreachable"

StartBeat = Callable[[RedisServer, str], ManagedProcess]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer(appendonly=True) as redis_server:
        yield redis_server


@pytest.fixture
def start_beat() -> Iterator[StartBeat]:
    started: list[ManagedProcess] = []

    def start(redis_server: RedisServer, name: str) -> ManagedProcess:
        env = {**TEST_ENV, "REDIS_URL": redis_server.url, "LIGHTSMS_BASE_URL": "http://127.0.0.1:1/"}
        argv = [venv_executable("celery"), "-A", "worker", "beat", "--loglevel=INFO"]
        process = ManagedProcess(argv, name=name, env=env, ready=r"beat: Starting")
        started.append(process)
        process.start()
        process.wait_ready(timeout=30)
        return process

    yield start
    for process in started:
        process.terminate(timeout=10)


def move_due_messages(client: redis.Redis) -> int:
    """move_due task messages waiting on the broker."""
    raw = client.lrange(MAINTENANCE_QUEUE.name, 0, -1)
    return sum(json.loads(message)["headers"]["task"] == MOVE_DUE_TASK for message in raw)


def sends(process: ManagedProcess, since: int = 0) -> int:
    """move_due sends that ``process`` logged after character ``since`` of its output."""
    return len(SENT_MOVE_DUE.findall(process.output()[since:]))


def assert_stay_alive(processes: list[ManagedProcess], seconds: float) -> None:
    """Fail as soon as one of ``processes`` exits within ``seconds``; return after ``seconds`` if none does."""
    try:
        dead = wait_until(lambda: [p for p in processes if not p.alive], timeout=seconds)
    except AssertionError:
        return  # all still running after `seconds`
    process = dead[0]
    raise AssertionError(
        f"{process.name} exited with code {process.returncode}; log {process.log_path}:\n{process.log_tail()}"
    )


def assert_only_one_schedules(beats: list[ManagedProcess], marks: list[int], *, sent: int, timeout: float) -> None:
    """From each beat's output position in ``marks`` on, one beat logs ``sent`` move_due sends and the others
    none, at about one per second (LIGHTSMS_DUE_INTERVAL=1): never two beats scheduling side by side."""
    began = time.monotonic()

    def counts() -> list[int]:
        return [sends(beat, mark) for beat, mark in zip(beats, marks, strict=True)]

    wait_until(lambda: max(counts()) >= sent, timeout=timeout, message=f"a beat to send move_due {sent} times")
    final, elapsed = counts(), time.monotonic() - began
    assert sorted(final)[:-1] == [0] * (len(beats) - 1), f"more than one beat scheduled: {final}"
    assert max(final) <= elapsed + 2, f"{max(final)} move_due in {elapsed:.1f}s"


def test_beat_rides_out_a_redis_outage_and_schedules_again(server: RedisServer, start_beat: StartBeat):
    beat = start_beat(server, "beat")
    client = server.client()
    wait_until(lambda: move_due_messages(client) >= 2, timeout=15, message="beat to schedule move_due")

    server.kill()
    assert_stay_alive([beat], OUTAGE)
    server.restart()  # with its AOF: the lock, the schedule and the queued messages come back

    before = move_due_messages(client)
    wait_until(lambda: move_due_messages(client) >= before + 3, timeout=30, message="move_due after the restart")
    assert beat.alive
    output = beat.output()
    assert output.count(OUTAGE_LINE) == 1, "one line per outage"
    assert "beat: Redis reachable again" in output
    assert "Traceback" not in output


def test_only_the_lock_holder_schedules_also_after_redis_comes_back_empty(server: RedisServer, start_beat: StartBeat):
    first = start_beat(server, "beat-1")
    first.wait_output(SENT_MOVE_DUE, timeout=15)
    second = start_beat(server, "beat-2")
    beats = [first, second]
    assert_only_one_schedules(beats, [len(beat.output()) for beat in beats], sent=4, timeout=15)
    assert sends(second) == 0

    server.kill()
    assert_stay_alive(beats, SHORT_OUTAGE)  # both tick (or poll for the lock) every second meanwhile
    for beat in beats:
        assert OUTAGE_LINE in beat.output()
    # Redis comes back without its data: the lock, RedBeat's schedule and the broker's bindings are gone. Both
    # beats race for the lock; the winner must install the schedule again, the other must stand by.
    assert server.dir is not None
    for data in server.dir.iterdir():  # appendonlydir/ (Redis 7) or appendonly.aof (Redis 6); keep the log
        if data.is_dir():
            shutil.rmtree(data)
        elif data.name != "redis.log":
            data.unlink()
    marks = [len(beat.output()) for beat in beats]
    server.restart()

    assert_only_one_schedules(beats, marks, sent=4, timeout=30)
    assert first.alive and second.alive
    for beat in beats:
        assert "Traceback" not in beat.output()
