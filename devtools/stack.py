"""A whole sending stack for integration tests: real Redis, the simulator process, Celery worker and
beat processes, and a Producer configured like them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from core import keys
from core.message import Message
from core.settings import Settings
from core.states import FINAL, State
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from devtools.redis_server import RedisServer
from devtools.sim_process import SimAdmin, SimProcess
from producers.producer import Producer

QUEUES = "sms.high,sms.normal,sms.bulk,sms.maintenance"
SETTLED = FINAL | {State.SENT, State.UNKNOWN, State.DEAD}

# Short timeouts and leases so that faults play out in seconds.
TEST_ENV = {
    "LIGHTSMS_LOGIN": "demo",
    "LIGHTSMS_API_KEY": "demo-key",
    "LIGHTSMS_SENDER": "LightSMS",
    "LIGHTSMS_MAX_RPS": "200",
    "LIGHTSMS_CONNECT_TIMEOUT": "1",
    "LIGHTSMS_READ_TIMEOUT": "1",
    "LIGHTSMS_RETRY_WINDOW": "1.5",
    "LIGHTSMS_BACKOFF_BASE": "0.5",
    "LIGHTSMS_BACKOFF_MAX": "1",
    "LIGHTSMS_MAX_ATTEMPTS": "3",
    "LIGHTSMS_LEASE_SECONDS": "16",
    "LIGHTSMS_REQUEUE_AFTER": "4",
    "LIGHTSMS_SWEEP_INTERVAL": "1",
    "LIGHTSMS_DUE_INTERVAL": "1",
    "LIGHTSMS_PAUSE_SECONDS": "30",
    "LIGHTSMS_PAUSE_RECHECK": "0.5",
    "LIGHTSMS_WORKER_CONCURRENCY": "8",
}


class Stack:
    def __init__(self, redis_server: RedisServer, sim: SimProcess, **overrides: str) -> None:
        self.redis_server = redis_server
        self.sim = sim
        self.admin: SimAdmin = sim.admin()
        self.env = {
            **TEST_ENV,
            "REDIS_URL": redis_server.url,
            "LIGHTSMS_BASE_URL": sim.base_url,
            **overrides,
        }
        self.processes: list[ManagedProcess] = []
        self.redis = redis.Redis.from_url(redis_server.url, decode_responses=True)
        self.producer = Producer(self.settings(), redis_client=redis.Redis.from_url(redis_server.url))

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {name.lower(): value for name, value in self.env.items()}
        values.update(overrides)
        return Settings(**values)

    # -- processes -----------------------------------------------------------------------------
    def start_worker(self, name: str, **env: str) -> ManagedProcess:
        argv = [venv_executable("celery"), "-A", "worker", "worker", "-n", f"{name}@%h", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", QUEUES]  # fmt: skip
        process = ManagedProcess(argv, name=f"worker-{name}", env={**self.env, **env}, ready=r"@\S+ ready\.")
        process.start()
        process.wait_ready(timeout=30)
        self.processes.append(process)
        return process

    def start_beat(self) -> ManagedProcess:
        process = start_beat(self.env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate(timeout=10)
        self.processes.clear()
        self.admin.close()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every message, counter, pause and opt-out; keep broker bindings and beat's schedule."""
        doomed = [k for k in self.redis.scan_iter(match=keys.PREFIX + "*") if not k.startswith("sms:redbeat")]
        for start in range(0, len(doomed), 500):
            self.redis.delete(*doomed[start : start + 500])
        self.admin.reset()

    def messages(self, ids: Iterable[str]) -> list[Message]:
        found = self.producer.store.get_many(list(ids))
        assert all(m is not None for m in found), "a message record is missing"
        return [m for m in found if m is not None]

    def wait_settled(self, ids: list[str], *, timeout: float, settled: frozenset[State] = SETTLED) -> list[Message]:
        def all_settled() -> list[Message] | None:
            current = self.messages(ids)
            return current if all(m.state in settled for m in current) else None

        try:
            return wait_until(all_settled, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"messages not settled in {timeout}s: {self._state_counts(ids)}") from None

    def _state_counts(self, ids: list[str]) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for m in self.producer.store.get_many(ids):
            state = m.state.value if m else "missing"
            counts[state] = counts.get(state, 0) + 1
        return counts

    def accepted_by_phone(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.admin.messages():
            counts[message["phone"]] = counts.get(message["phone"], 0) + 1
        return counts


def start_beat(env: Mapping[str, str]) -> ManagedProcess:
    """`celery -A worker beat` with `env`, once it is scheduling."""
    argv = [venv_executable("celery"), "-A", "worker", "beat", "--loglevel=INFO"]
    process = ManagedProcess(argv, name="beat", env=env, ready=r"beat: Starting")
    process.start()
    process.wait_ready(timeout=30)
    return process


def phones(count: int, *, start: int = 0) -> list[str]:
    """Distinct valid Lithuanian mobile numbers, digits-only international form."""
    return [f"3706{start + i:07d}" for i in range(count)]
