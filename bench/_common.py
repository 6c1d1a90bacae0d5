"""What the benchmark scenarios share: figures with their runs, Redis configured like compose, the
simulator, worker/beat/naive-worker processes run like production, and the measuring helpers
(INFO commandstats deltas, broker drain, acceptance times at the simulator, peak RSS).

Every scenario runs on real processes: redis-server, `lightsms-sim`, `celery -A worker worker` and
beat, or `celery -A bench.naive_app worker` for the baseline. Times are wall-clock time.time() on
this one machine, so the simulator's accepted_at (its clock, no skew injected) and the bench's own
timestamps compare directly.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from bench import naive_app
from core.settings import CoreSettings
from devtools.processes import ManagedProcess, venv_executable
from devtools.redis_server import RedisServer
from devtools.sim_process import SimAdmin, SimProcess
from devtools.stack import phones, start_beat
from producers.producer import Producer

__all__ = [
    "API_ENDPOINTS",
    "API_KEY",
    "LOGIN",
    "RUNS",
    "BenchStack",
    "CpuMeter",
    "Figure",
    "accepted_times",
    "command_calls",
    "commands_delta",
    "compose_redis",
    "make_producer",
    "median",
    "phones",
    "reset_peak_rss",
    "peak_rss_mb",
    "seed_way",
    "simulator",
    "wait_drained",
]

RUNS = 3  # every scenario three times; medians reported
LOGIN, API_KEY = "bench", "bench-key"
# Every LightSMS endpoint the simulator serves: a provider 100 ms away is that far for all of them.
API_ENDPOINTS = ["send", "timestamp", "status", "balance", "senders", "incoming", "find_on_stop", "add2stop"]
# The limiter must not be what the throughput scenarios measure; 1000/s is the most Settings allows.
UNLIMITED_RPS = "1000"


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity: its value in each run and the median reported."""

    label: str
    unit: str
    runs: list[float]
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "median": self.median, "runs": self.runs,
                **({"detail": self.detail} if self.detail else {})}  # fmt: skip

    def __str__(self) -> str:
        runs = ", ".join(_fmt(v) for v in self.runs)
        return f"{_fmt(self.median)} {self.unit} (runs: {runs})"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- processes -------------------------------------------------------------------------------------


def make_producer(url: str) -> Producer:
    """A producer as a service builds one: its own Redis client and Celery producer app on `url`."""
    values: dict[str, Any] = {"redis_url": url, "celery_broker_url": url, "lightsms_sender": "LightSMS"}
    return Producer(CoreSettings(**values))


def compose_redis(*, fsync: str = "everysec") -> RedisServer:
    """redis-server configured like docker-compose.yml: AOF on, fsync every second, noeviction.
    (Later arguments win over RedisServer's own `--appendfsync always`.)"""
    return RedisServer(appendonly=True, extra_args=["--appendfsync", fsync, "--maxmemory-policy", "noeviction"])


def simulator() -> SimProcess:
    return SimProcess(login=LOGIN, api_key=API_KEY, extra_args=("--balance", "1000000000"))


class BenchStack:
    """Processes on one Redis and one simulator, configured like production: only what a deployment
    sets (Redis, the base URL, credentials, the sender, the rate) plus what the scenario names; every
    other setting, the worker concurrency included, is the project's default."""

    def __init__(self, redis_server: RedisServer, sim: SimProcess, **env: str) -> None:
        self.redis_server = redis_server
        self.sim = sim
        self.admin: SimAdmin = sim.admin()
        self.env = {
            "REDIS_URL": redis_server.url,
            "CELERY_BROKER_URL": redis_server.url,  # as derived from REDIS_URL; set so no .run/stack.env applies
            "LIGHTSMS_BASE_URL": sim.base_url,
            "LIGHTSMS_LOGIN": LOGIN,
            "LIGHTSMS_API_KEY": API_KEY,
            "LIGHTSMS_SENDER": "LightSMS",
            "LIGHTSMS_MAX_RPS": UNLIMITED_RPS,
            **env,
        }
        self.redis = redis.Redis.from_url(redis_server.url, decode_responses=True)
        self.processes: list[ManagedProcess] = []
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        """A producer as a service would build one (its own Redis client and Celery producer app)."""
        if self._producer is None:
            self._producer = make_producer(self.env["REDIS_URL"])
        return self._producer

    def start_workers(self, count: int, name: str = "bench", **env: str) -> list[ManagedProcess]:
        """`count` workers started together, each as compose runs one: `celery -A worker worker`."""
        started = []
        for n in range(count):
            argv = [venv_executable("celery"), "-A", "worker", "worker", "-n", f"{name}{n}@%h", "--loglevel=INFO"]
            process = ManagedProcess(argv, name=f"worker-{name}{n}", env={**self.env, **env}, ready=r"@\S+ ready\.")
            process.start()
            started.append(process)
        for process in started:
            process.wait_ready(timeout=60)
        self.processes += started
        return started

    def start_beat(self) -> ManagedProcess:
        process = start_beat(self.env)
        self.processes.append(process)
        return process

    def start_naive_worker(self) -> ManagedProcess:
        """The baseline: `celery -A bench.naive_app worker` (threads pool of 8, acks_late, prefetch 1)."""
        argv = [venv_executable("celery"), "-A", "bench.naive_app", "worker", "-n", "naive@%h", "--loglevel=INFO"]
        env = {"NAIVE_BROKER_URL": self.env["REDIS_URL"], "NAIVE_BASE_URL": self.sim.base_url,
               "NAIVE_LOGIN": LOGIN, "NAIVE_API_KEY": API_KEY}  # fmt: skip
        process = ManagedProcess(argv, name="naive-worker", env=env, cwd=str(Path(__file__).parent.parent),
                                 ready=r"@\S+ ready\.")  # fmt: skip
        process.start()
        process.wait_ready(timeout=60)
        self.processes.append(process)
        return process

    def stop_process(self, process: ManagedProcess) -> None:
        process.terminate(timeout=20)
        if process in self.processes:
            self.processes.remove(process)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate(timeout=20)
        self.processes.clear()
        self.admin.close()

    def reset_sim(self, **faults: Any) -> None:
        """The simulator back to an empty message and request log, then `faults` applied."""
        self.admin.reset()
        if faults:
            self.admin.faults(**faults)


# -- measuring -------------------------------------------------------------------------------------


def command_calls(client: redis.Redis) -> dict[str, int]:
    """INFO commandstats as {command: calls}. Commands that Lua scripts run count too (Redis counts them)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def commands_delta(before: Mapping[str, int], after: Mapping[str, int], *, own: int = 0) -> dict[str, int]:
    """Calls per command between two readings; `own` (the bench's own polling) is taken off the total,
    and the INFO call that took the second reading is left out."""
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    delta = {name: calls for name, calls in delta.items() if calls > 0}
    delta["info"] = delta.get("info", 1) - 1
    delta["_total"] = sum(v for k, v in delta.items() if not k.startswith("_")) - own
    return dict(sorted(delta.items(), key=lambda item: -item[1]))


def wait_drained(
    client: redis.Redis, queues: Sequence[str], *, timeout: float, interval: float = 0.05
) -> tuple[float, int]:
    """Wait until the broker lists `queues` are empty and no task is unacked (kombu's Redis transport
    keeps reserved, unacknowledged messages in the `unacked` hash); returns (time.time(), commands
    this polling sent), so they can be taken off the commandstats delta."""
    deadline = time.monotonic() + timeout
    sent = 0
    while True:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            pipe.hlen("unacked")
            counts = pipe.execute()
        sent += len(queues) + 1
        if not any(counts):
            return time.time(), sent
        if time.monotonic() > deadline:
            raise AssertionError(
                f"broker not drained in {timeout}s: {dict(zip([*queues, 'unacked'], counts, strict=True))}"
            )
        time.sleep(interval)


def accepted_times(admin: SimAdmin, expected: int, *, timeout: float, interval: float = 0.5) -> dict[str, float]:
    """{phone: accepted_at} for the messages the simulator accepted, once there are `expected` of them.
    Polled slowly: the figure comes from accepted_at, not from when we looked."""
    deadline = time.monotonic() + timeout
    while True:
        found = {m["phone"]: float(m["accepted_at"]) for m in admin.messages()}
        if len(found) >= expected:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the simulator accepted {len(found)} of {expected} messages in {timeout}s")
        time.sleep(interval)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM of `pid` and its descendants (Linux: `5` to /proc/<pid>/clear_refs)."""
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{each}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> dict[int, float]:
    """VmHWM (peak resident set size) in MB (10^6 bytes), of `pid` and each of its descendants."""
    peaks = {}
    for each in _descendants(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[each] = int(line.split()[1]) * 1024 / 1e6  # VmHWM is in KiB
    return peaks


@dataclass
class CpuMeter:
    """CPU seconds spent by the worker process (and its children), Redis and this bench process."""

    worker_pid: int
    redis: redis.Redis

    def read(self) -> dict[str, float]:
        info = self.redis.info("cpu")
        ticks = os.sysconf("SC_CLK_TCK")
        worker = 0.0
        for pid in _descendants(self.worker_pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                worker += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return {"worker": worker, "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
                "producer": time.process_time()}  # fmt: skip

    @staticmethod
    def per_message_ms(before: Mapping[str, float], after: Mapping[str, float], count: int) -> dict[str, float]:
        return {name: (after[name] - before[name]) * 1000 / count for name in before}


def seed_way(base_url: str, phone_list: Sequence[str], *, text: str = "One-time code 1234") -> float:
    """The seed documents' way: for each message, timestamp.php, then a signed send.php, one message
    after another on one keep-alive requests.Session. Returns messages per second."""
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    for phone in phone_list:
        timestamp = session.get(base_url + "timestamp.php", timeout=10).text.strip()
        params = {"login": LOGIN, "phone": phone, "text": text, "sender": "LightSMS",
                  "timestamp": timestamp, "return": "json"}  # fmt: skip
        params["signature"] = naive_app.sign(params, API_KEY)
        response = session.get(base_url + "send.php", params=params, timeout=10)
        response.raise_for_status()
    elapsed = time.perf_counter() - started
    session.close()
    return len(phone_list) / elapsed


def timed_loop(call: Callable[[int], object], count: int) -> float:
    """`call(i)` for i in range(count), back to back; returns calls per second."""
    started = time.perf_counter()
    for i in range(count):
        call(i)
    return count / (time.perf_counter() - started)


def check_environment() -> list[str]:
    """Variables in the bench's own environment that would leak into every worker it starts."""
    prefixes = ("LIGHTSMS_", "REDIS_", "CELERY_")
    return sorted(name for name in os.environ if name.startswith(prefixes))
