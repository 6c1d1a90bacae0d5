"""End to end at 0 ms simulator latency, on Redis configured like compose (AOF, fsync every second):

- the naive Celery task (bench/naive_app.py) and Celery's no-op ceiling, on `celery -A bench.naive_app`;
- ours, single `send()` calls and one `send_many`, on `celery -A worker worker` and beat;
- Redis commands per message (INFO commandstats deltas over each run, broker and beat included);
- peak RSS of the worker process and Redis memory per stored message while the send_many goes through;
- open-loop latency: send() at a fixed rate (half the single-send rate just measured), each message's
  time from its scheduled send() to its acceptance at the simulator.

Rates are messages from the first enqueue to the last acceptance at the simulator (its accepted_at),
the enqueueing loop running in this process while the worker drains, for ours and the naive task alike.
The single-send runs of the two take turns (naive, ours, naive, ours...), both workers up throughout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import naive_app
from bench._common import (
    RUNS,
    BenchStack,
    CpuMeter,
    Figure,
    accepted_times,
    command_calls,
    commands_delta,
    compose_redis,
    peak_rss_mb,
    phones,
    reset_peak_rss,
    simulator,
    wait_drained,
)

__all__ = ["main"]

SINGLES = 1000
BULK = 20_000
WARM_UP = 50
OPEN_LOOP_SECONDS = 10.0
TEXT = "Your code is 1234"
NAIVE_QUEUES = ["celery"]
OUR_QUEUES = ["sms.high", "sms.normal", "sms.bulk"]


@dataclass
class SinglesRuns:
    """Runs of SINGLES messages each, enqueued one call at a time while the worker drains."""

    rates: list[float] = field(default_factory=list)
    commands: list[dict[str, int]] = field(default_factory=list)  # commandstats delta of each run
    cpu: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Singles:
    """One side of the single-send comparison: how to enqueue one message, and on which worker."""

    enqueue: Callable[[str], object]
    queues: Sequence[str]
    meter: CpuMeter
    start: int  # the first phone number of its runs (each side its own numbers)
    accept_timeout: float
    runs: SinglesRuns = field(default_factory=SinglesRuns)

    def run_once(self, stack: BenchStack) -> None:
        """The rate from the first enqueue call to the last acceptance at the simulator, the Redis
        commands and the CPU per message: the same measurement for ours and the naive task."""
        stack.reset_sim()
        batch = phones(SINGLES, start=self.start + len(self.runs.rates) * SINGLES)
        before, cpu_before = command_calls(stack.redis), self.meter.read()
        started = time.time()
        for phone in batch:
            self.enqueue(phone)
        _, own = wait_drained(stack.redis, self.queues, timeout=300)
        accepted = accepted_times(stack.admin, SINGLES, timeout=self.accept_timeout)
        self.runs.cpu.append(self.meter.per_message_ms(cpu_before, self.meter.read(), SINGLES))
        self.runs.commands.append(commands_delta(before, command_calls(stack.redis), own=own))
        self.runs.rates.append(SINGLES / (max(accepted.values()) - started))


def _interleaved(stack: BenchStack, *sides: Singles) -> None:
    """Each side's runs taken in turn (naive, ours, naive, ours...), not all of one side first: this
    machine's speed drifts over minutes, and a ratio of two medians taken minutes apart carries it."""
    for _ in range(RUNS):
        for side in sides:
            side.run_once(stack)


def _naive_figures(singles: SinglesRuns, noop_rates: list[float]) -> dict[str, Figure]:
    return {
        "naive_singles_rate": Figure(f"naive Celery task, {SINGLES} messages end to end", "msg/s", singles.rates),
        "naive_commands_per_message": Figure(
            "naive Celery task: Redis commands per message (the broker's)", "cmd/msg",
            [delta["_total"] / SINGLES for delta in singles.commands],
        ),  # fmt: skip
        **_cpu_figures("naive", "naive Celery task", singles.cpu),
        "noop_ceiling_rate": Figure(f"Celery no-op task, {SINGLES} tasks enqueued and drained", "tasks/s", noop_rates),
    }


def _noop_rates(stack: BenchStack, noop: Any) -> list[float]:
    rates: list[float] = []
    for run in range(RUNS):
        batch = phones(SINGLES, start=200_000 + run * SINGLES)
        started = time.time()
        for phone in batch:
            noop.apply_async(args=[phone, TEXT])
        finished, _ = wait_drained(stack.redis, NAIVE_QUEUES, timeout=300, interval=0.01)
        rates.append(SINGLES / (finished - started))
    return rates


def _cpu_figures(prefix: str, who: str, cpu: list[dict[str, float]]) -> dict[str, Figure]:
    places = {"worker": "worker process", "redis": "redis-server", "producer": "the enqueueing process"}
    return {
        f"{prefix}_cpu_{place}": Figure(f"{who}: CPU of {what} per message", "ms/msg", [c[place] for c in cpu])
        for place, what in places.items()
    }


def _ours_singles_figures(singles: SinglesRuns) -> dict[str, Figure]:
    commands = [delta["_total"] / SINGLES for delta in singles.commands]
    return {
        "ours_singles_rate": Figure(f"ours, {SINGLES} single send() end to end", "msg/s", singles.rates),
        "commands_per_single": Figure("Redis commands per single send()", "cmd/msg", commands,
                                      {"commands_per_run": singles.commands}),
        **_cpu_figures("ours", "ours, single send()", singles.cpu),
    }  # fmt: skip


def _ours_bulk(stack: BenchStack, worker_pid: int) -> dict[str, Figure]:
    rates, enqueue_rates, commands, peaks, per_message = [], [], [], [], []
    breakdown: list[dict[str, int]] = []
    dataset: list[float] = []
    for run in range(RUNS):
        stack.reset_sim()
        batch = phones(BULK, start=1_000_000 + run * BULK)
        reset_peak_rss(worker_pid)
        memory = stack.redis.info("memory")
        before = command_calls(stack.redis)
        started = time.time()
        stack.producer.send_many(batch, TEXT)
        enqueue_rates.append(BULK / (time.time() - started))
        _, own = wait_drained(stack.redis, OUR_QUEUES, timeout=600, interval=0.2)
        accepted = accepted_times(stack.admin, BULK, timeout=120, interval=1.0)
        delta = commands_delta(before, command_calls(stack.redis), own=own)
        after = stack.redis.info("memory")
        rates.append(BULK / (max(accepted.values()) - started))
        commands.append(delta["_total"] / BULK)
        breakdown.append(delta)
        peaks.append(max(peak_rss_mb(worker_pid).values()))
        per_message.append((int(after["used_memory"]) - int(memory["used_memory"])) / BULK)
        dataset.append((int(after["used_memory_dataset"]) - int(memory["used_memory_dataset"])) / BULK)
    return {
        "ours_bulk_rate": Figure(f"ours, send_many to {BULK:,} recipients end to end", "msg/s", rates,
                                 {"enqueue_recipients_per_s": enqueue_rates}),
        "commands_per_bulk_recipient": Figure("Redis commands per send_many recipient", "cmd/msg", commands,
                                              {"commands_per_run": breakdown}),
        "worker_peak_rss": Figure(f"worker process peak RSS (VmHWM) while {BULK:,} recipients go through",
                                  "MB", peaks),
        "redis_bytes_per_message": Figure("Redis used_memory per stored message (records, indexes; after SENT)",
                                          "bytes", per_message, {"used_memory_dataset_per_message": dataset}),
    }  # fmt: skip


def _open_loop(stack: BenchStack, rate: float) -> dict[str, Figure]:
    p50s, p99s, maxes, lags = [], [], [], []
    count = max(50, int(rate * OPEN_LOOP_SECONDS))
    for run in range(RUNS):
        stack.reset_sim()
        batch = phones(count, start=2_000_000 + run * count)
        scheduled: dict[str, float] = {}
        lag = 0.0
        start = time.time() + 0.2
        for i, phone in enumerate(batch):
            target = start + i / rate
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
            lag = max(lag, time.time() - target)
            scheduled[phone] = target  # latency from the scheduled moment: falling behind counts too
            stack.producer.send(phone, TEXT)
        accepted = accepted_times(stack.admin, count, timeout=120)
        latencies = sorted((accepted[phone] - at) * 1000 for phone, at in scheduled.items())
        p50s.append(latencies[len(latencies) // 2])
        p99s.append(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])
        maxes.append(latencies[-1])
        lags.append(lag * 1000)
    detail = {"offered_rate_msg_per_s": rate, "messages_per_run": count, "sender_max_lag_ms": lags}
    return {
        "open_loop_p50": Figure(f"send() -> accepted at the simulator, open loop at {rate:.0f}/s, p50", "ms", p50s,
                                detail),
        "open_loop_p99": Figure("the same, p99", "ms", p99s),
        "open_loop_max": Figure("the same, max", "ms", maxes),
    }  # fmt: skip


def main() -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    with compose_redis() as redis_server, simulator() as sim:
        stack = BenchStack(redis_server, sim)
        app = naive_app.make_app(stack.env["REDIS_URL"])
        try:
            [worker] = stack.start_workers(1)
            stack.start_beat()
            for phone in phones(WARM_UP, start=900_000):
                stack.producer.send(phone, "warm-up")
            accepted_times(stack.admin, WARM_UP, timeout=60)
            wait_drained(stack.redis, OUR_QUEUES, timeout=60)
            time.sleep(1.0)
            idle = command_calls(stack.redis)
            time.sleep(5.0)  # the stack idle: what beat, upkeep and the broker loop cost with no traffic
            idle_rate = commands_delta(idle, command_calls(stack.redis))["_total"] / 5.0
            # The naive worker runs beside ours (each idle while the other is measured), so that
            # their runs can alternate.
            naive_worker = stack.start_naive_worker()
            send, noop = app.tasks["naive.send"], app.tasks["naive.noop"]
            for phone in phones(WARM_UP, start=950_000):
                send.apply_async(args=[phone, TEXT])
            wait_drained(stack.redis, NAIVE_QUEUES, timeout=60)
            assert worker.pid is not None and naive_worker.pid is not None
            naive = Singles(lambda phone: send.apply_async(args=[phone, TEXT]), NAIVE_QUEUES,
                            CpuMeter(naive_worker.pid, stack.redis), start=100_000, accept_timeout=60)
            ours = Singles(lambda phone: stack.producer.send(phone, TEXT), OUR_QUEUES,
                           CpuMeter(worker.pid, stack.redis), start=300_000, accept_timeout=120)  # fmt: skip
            _interleaved(stack, naive, ours)
            figures.update(_naive_figures(naive.runs, _noop_rates(stack, noop)))
            stack.stop_process(naive_worker)
            figures.update(_ours_singles_figures(ours.runs))
            figures["commands_per_single"].detail["idle_commands_per_s"] = idle_rate
            figures.update(_ours_bulk(stack, worker.pid))
            figures.update(_open_loop(stack, figures["ours_singles_rate"].median / 2))
        finally:
            stack.stop()
            app.close()
    return figures


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
