"""Gather the scenarios' figures into bench/results.md (the issue-10 table: scenario, figure, the
baseline it is compared with, the ratio, the target, met or not) and bench/results.json (everything,
each run's value included). Ratios are the median of the figure over the median of its baseline.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import RUNS, Figure

__all__ = ["ROWS", "Row", "write"]

HERE = Path(__file__).parent
MD_PATH = HERE / "results.md"
JSON_PATH = HERE / "results.json"


@dataclass(frozen=True)
class Row:
    scenario: str
    figure: str  # key of the measured Figure
    target: str  # as the issue states it
    check: Callable[[float], bool] | None  # applied to the ratio when there is a baseline, else to the figure
    baseline: str | None = None  # key of the baseline Figure ...
    fixed: tuple[float, str] | None = None  # ... or a fixed baseline value and its text
    worst: bool = False  # judge the worst run (the highest value), not the median


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


ROWS = [
    Row("single send() end to end, 0 ms", "ours_singles_rate", "≥ 0.8", _at_least(0.8), "naive_singles_rate"),
    Row("send_many recipients end to end, 0 ms", "ours_bulk_rate", "≥ 10", _at_least(10), "naive_singles_rate"),
    Row("producer.send() enqueue, fsync everysec", "producer_send_rate", "≥ 0.8", _at_least(0.8), "apply_async_rate"),
    Row(
        "producer.send() enqueue, appendfsync always",
        "producer_send_rate_always",
        "≥ 0.8",
        _at_least(0.8),
        "apply_async_rate_always",
    ),
    Row("send_many enqueue, fsync everysec", "send_many_enqueue_rate", "≥ 10", _at_least(10), "apply_async_rate"),
    Row(
        "send_many enqueue, appendfsync always",
        "send_many_enqueue_rate_always",
        "≥ 10",
        _at_least(10),
        "apply_async_rate_always",
    ),
    Row("single send() at 100 ms vs at 0 ms", "ours_singles_rate_100ms", "≥ 0.8", _at_least(0.8), "ours_singles_rate"),
    Row(
        "ours at 100 ms vs the seed documents' way",
        "ours_singles_rate_100ms",
        "≥ 50",
        _at_least(50),
        "seed_way_rate_100ms",
    ),
    Row("open-loop send() → accepted, p50", "open_loop_p50", "≤ 10 ms", _at_most(10)),
    Row("open-loop send() → accepted, p99", "open_loop_p99", "≤ 50 ms", _at_most(50)),
    Row("open-loop send() → accepted, max", "open_loop_max", "reported", None),
    Row("Redis commands per single send()", "commands_per_single", "≤ 15", _at_most(15)),
    Row("Redis commands per send_many recipient", "commands_per_bulk_recipient", "≤ 3", _at_most(3)),
    Row(
        "backlog of 600 at LIGHTSMS_MAX_RPS=10: drain",
        "backlog_drain_seconds",
        "≤ 1.05",
        _at_most(1.05),
        fixed=(60.0, "ideal 60 s"),
    ),
    Row("backlog of 600 at LIGHTSMS_MAX_RPS=10: commands", "backlog_commands_per_message", "≤ 20", _at_most(20)),
    Row(
        "limiter, 4 workers at 50/s: busiest second (worst run)",
        "limiter_max_per_second",
        "≤ 51",
        _at_most(51),
        worst=True,
    ),
    Row(
        "limiter, 4 workers at 50/s: served in 30 s",
        "limiter_share",
        "≥ 0.97",
        _at_least(0.97),
        fixed=(1.0, "1,500 allowed"),
    ),
    Row("limiter, 4 workers at 50/s: refusals, HTTP 429 (worst run)", "limiter_refusals", "0", _at_most(0), worst=True),
    Row("limiter, 4 workers at 50/s: least room left in any second", "limiter_least_room", "reported", None),
    Row("worker peak RSS, 20,000 recipients via send_many", "worker_peak_rss", "≤ 120 MB", _at_most(120)),
    Row("Redis memory per stored message", "redis_bytes_per_message", "reported", None),
    # No targets: where the time goes against Celery's own ceiling on this machine.
    Row("context: the naive task vs Celery's no-op", "naive_singles_rate", "—", None, "noop_ceiling_rate"),
    Row("context: single send() vs Celery's no-op", "ours_singles_rate", "—", None, "noop_ceiling_rate"),
    Row(
        "context: Redis commands per message, single send() vs naive",
        "commands_per_single",
        "—",
        None,
        "naive_commands_per_message",
    ),
    Row("context: worker CPU per message, single send() vs naive", "ours_cpu_worker", "—", None, "naive_cpu_worker"),
    Row("context: Redis CPU per message, single send() vs naive", "ours_cpu_redis", "—", None, "naive_cpu_redis"),
    Row(
        "context: enqueueing CPU per message, single send() vs naive",
        "ours_cpu_producer",
        "—",
        None,
        "naive_cpu_producer",
    ),
]

# How a baseline is named in the table (its full description is in "Every figure").
SHORT = {
    "naive_singles_rate": "naive Celery task",
    "apply_async_rate": "apply_async loop",
    "apply_async_rate_always": "apply_async loop, always",
    "ours_singles_rate": "ours at 0 ms",
    "seed_way_rate_100ms": "seed documents' way, 100 ms",
    "noop_ceiling_rate": "Celery no-op ceiling",
    "naive_commands_per_message": "naive Celery task",
    "naive_cpu_worker": "naive Celery task",
    "naive_cpu_redis": "naive Celery task",
    "naive_cpu_producer": "naive Celery task",
}


def _num(value: float, unit: str = "") -> str:
    if value != value:
        return "n/a"
    if unit == "share":
        text = f"{value:.3f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip() if unit and unit != "share" else text


def evaluate(figures: Mapping[str, Figure]) -> list[dict[str, Any]]:
    rows = []
    for row in ROWS:
        figure = figures.get(row.figure)
        out: dict[str, Any] = {"scenario": row.scenario, "figure_key": row.figure, "target": row.target}
        if figure is None:
            rows.append({**out, "figure": "not run", "baseline": "", "ratio": None, "met": None})
            continue
        value, ratio, baseline_text = (max(figure.runs) if row.worst else figure.median), None, "—"
        if row.baseline is not None:
            base = figures.get(row.baseline)
            if base is not None:
                ratio = value / base.median
                baseline_text = f"{SHORT.get(row.baseline, row.baseline)}: {_num(base.median, base.unit)}"
            else:
                baseline_text = f"{row.baseline}: not run"
        elif row.fixed is not None:
            ratio = value / row.fixed[0]
            baseline_text = row.fixed[1]
        measured = ratio if (row.baseline is not None or row.fixed is not None) else value
        met = None if row.check is None or measured is None else bool(row.check(measured))
        rows.append({**out, "figure": _num(value, figure.unit), "figure_median": value, "baseline": baseline_text,
                     "ratio": ratio, "met": met})  # fmt: skip
    return rows


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=True)
        return done.stdout.rstrip("\n")  # not strip(): porcelain lines begin with a space
    except (OSError, subprocess.CalledProcessError):
        return ""


def _redis_version() -> str:
    from devtools.redis_server import find_redis_server

    try:
        return subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def _met(value: bool | None) -> str:
    return "—" if value is None else ("**yes**" if value else "no")


def write(
    figures: Mapping[str, Figure],
    *,
    context: Mapping[str, Mapping[str, str]],
    failed: Mapping[str, str],
    started: datetime,
    seconds: float,
    commit: str,
    scaled: list[str],
) -> None:
    rows = evaluate(figures)
    changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=no", "--", ":!bench").splitlines()]
    dirty = bool(changed)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "redis": _redis_version()}  # fmt: skip
    payload = {
        "commit": commit,
        "tracked_changes_outside_bench": dirty,
        "changed_files_outside_bench": changed,
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "command": "make bench (python -m bench)",
        "runs_per_scenario": RUNS,
        "machine": machine,
        "table": rows,
        "figures": {key: figure.as_json() for key, figure in figures.items()},
        "context": context,
        "failed": failed,
        "scaled_down": scaled,
    }
    JSON_PATH.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    MD_PATH.write_text(_markdown(rows, figures, payload))


def _markdown(rows: list[dict[str, Any]], figures: Mapping[str, Figure], payload: Mapping[str, Any]) -> str:
    met = sum(1 for r in rows if r["met"])
    judged = sum(1 for r in rows if r["met"] is not None)
    changed = payload["changed_files_outside_bench"]
    local = f" plus uncommitted changes to {', '.join(changed)}" if changed else ""
    lines = [
        "# Benchmark results (issue 10)",
        "",
        f"Commit `{payload['commit']}`{local}, "
        f"run {payload['started_at']} in {payload['seconds'] / 60:.1f} min by `make bench` (`python -m bench`) on "
        f"{payload['machine']['cpus']} CPUs, Python {payload['machine']['python']}, {payload['machine']['redis']}.",
        f"Each scenario {RUNS} times; medians (the worst run where a row says so); "
        "a ratio is the figure's median over the baseline's median. "
        f"Targets met: {met} of {judged}.",
        "",
        "| scenario | figure | baseline compared with | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3f}" if r["ratio"] < 10 else f"{r['ratio']:.1f}"
        cells = [r["scenario"], r["figure"], r["baseline"], ratio, r["target"], _met(r["met"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## How it was measured", "", *HOW, ""]
    if payload["scaled_down"]:
        lines += ["## Scaled down to fit 15 minutes", "", *[f"- {s}" for s in payload["scaled_down"]], ""]
    lines += ["## Every figure", "", "| key | what | median | runs |", "|---|---|---|---|"]
    for key, figure in figures.items():
        runs = ", ".join(_num(v, "") for v in figure.runs)
        lines.append(f"| `{key}` | {figure.label} | {_num(figure.median, figure.unit)} | {runs} |")
    lines += ["", *_commands_section(figures)]
    if payload["context"]:
        lines += ["## Context", ""]
        for name, values in payload["context"].items():
            lines += [f"bench.{name}:", ""] + [f"- {k}: {v}" for k, v in values.items()] + [""]
    if payload["failed"]:
        lines += ["## Failed scenarios", ""] + [f"- {k}: {v}" for k, v in payload["failed"].items()] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _commands_section(figures: Mapping[str, Figure]) -> list[str]:
    lines: list[str] = []
    for key in ("commands_per_single", "commands_per_bulk_recipient", "backlog_commands_per_message"):
        figure = figures.get(key)
        if figure is None or not figure.detail.get("commands_per_run"):
            continue
        runs: list[dict[str, int]] = figure.detail["commands_per_run"]
        middle = sorted(runs, key=lambda d: d["_total"])[len(runs) // 2]
        top = [(name, calls) for name, calls in middle.items() if not name.startswith("_")][:12]
        if not lines:
            lines += ["## Where the Redis commands go (the median run; commands inside Lua scripts count)", ""]
        lines.append(f"- `{key}`: " + ", ".join(f"{name} {calls:,}" for name, calls in top))
    idle = figures.get("commands_per_single")
    if idle is not None and "idle_commands_per_s" in idle.detail:
        lines.append(
            f"- the stack idle (one worker and beat, no traffic): {idle.detail['idle_commands_per_s']:.0f} "
            "commands/s, included in every figure above"
        )
    return [*lines, ""] if lines else []


HOW = [
    "- Real processes: redis-server configured like docker-compose.yml (`appendonly yes`, `appendfsync everysec`, "
    "`maxmemory-policy noeviction`; `appendfsync always` for the second enqueue lines), `lightsms-sim`, "
    "`celery -A worker worker --loglevel=INFO` and `celery -A worker beat` with the project's default settings "
    "(worker concurrency included) apart from Redis, the simulator's URL and credentials, and `LIGHTSMS_MAX_RPS` "
    "(1000, the most allowed, where the limiter is not what is measured).",
    "- The naive baseline is `bench/naive_app.py`: one Celery task per SMS that signs and calls send.php with a "
    "requests.Session (one per thread), no store, on `celery -A bench.naive_app worker --loglevel=INFO`, threads "
    "pool of 8, acks_late, prefetch 1, on the same Redis configuration. Celery's no-op ceiling is the same app's "
    "task that does nothing. The seed documents' way: timestamp.php then a signed send.php, one message after "
    "another, one keep-alive session. The enqueue baseline: a loop of the naive task's `apply_async`.",
    "- End-to-end rates: messages from the first enqueue call to the last acceptance at the simulator "
    "(`accepted_at` in GET /_sim/messages), the enqueue loop running in the bench process while the worker drains "
    "(ours and the naive task alike); the no-op ceiling up to the broker being drained (lists empty, nothing unacked). "
    "The single-send runs of ours and the naive task take turns (naive, ours, naive...), both workers up, so that "
    "the machine's drift over minutes falls on both alike; each side's commands include the other's idle polling.",
    "- Redis commands: `INFO commandstats` deltas over each run, broker, beat, the worker's upkeep and poll threads "
    "included (commands run inside Lua scripts count, as Redis counts them); the bench's own polling taken off.",
    "- Open loop: send() at fixed times (half the median single-send rate of the same run), latency from each "
    "scheduled moment to the simulator's accepted_at (both this machine's clock).",
    "- Limiter: four worker processes and beat, the simulator enforcing max_rps=50 over a sliding second; the "
    "window is 30 s from the first send.php; timestamp.php (not limited by the simulator) is left out.",
    "- Memory: VmHWM of the worker process (its peak reset through /proc/<pid>/clear_refs before each run), in MB "
    "(10^6 bytes); Redis `used_memory` delta over each 20,000-recipient run, after all were SENT, per message.",
]
