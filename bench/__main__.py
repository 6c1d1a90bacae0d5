"""`python -m bench` (`make bench`): every scenario, then bench/results.md and bench/results.json.

`python -m bench NAME ...` runs only the named modules and prints their figures (add `--write` to
write the results files from them, the table showing the rest as not run).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench._common import Figure, check_environment

# In this order: e2e measures the single-send rate that latency's ratio and the open loop build on.
# sim_rps, inbound_latency and consumer_drain are not issue 10's: their figures go to the results' context section.
SCENARIOS = ["e2e", "enqueue", "latency", "backlog", "limiter", "sim_rps", "inbound_latency", "consumer_drain"]

SCALED = [
    "single-send end-to-end runs (ours at 0 ms and 100 ms, the naive task, the no-op) are 1,000 messages each; "
    "send_many runs are the full 20,000 recipients (the memory scenario).",
    "enqueue loops: 2,000 send()/apply_async calls and one send_many of 5,000 recipients per run.",
    "the seed documents' way at 100 ms: 25 messages per run (200 ms each, 5 s).",
    "open loop: 10 s of send() per run.",
    "backlog (600 at 10/s) and limiter (4 workers, 30 s window) are full size.",
    "sim_rps, inbound_latency and consumer_drain (context, not issue 10's table) run once each.",
]


def _commit() -> str:
    here = Path(__file__).parent.parent
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str]) -> int:
    write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")]
    if not names:
        names, write = SCENARIOS, True
    leaking = check_environment()
    if leaking:
        print(f"note: {', '.join(leaking)} set here reach every process the bench starts", flush=True)
    commit = _commit()  # what is measured: the code as it is when the run starts
    started_at, started = datetime.now(UTC), time.monotonic()
    figures: dict[str, Figure] = {}
    context: dict[str, dict[str, str]] = {}
    failed: dict[str, str] = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}", flush=True)
        began = time.monotonic()
        try:
            results = module.main()
        except Exception as exc:  # one broken scenario must not hide the others' figures
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"   FAILED: {failed[name]}", flush=True)
            continue
        for key, value in (results or {}).items():
            print(f"   {key}: {value}", flush=True)
            if isinstance(value, Figure):
                figures[key] = value
            else:
                context.setdefault(name, {})[key] = str(value)
        print(f"   ({time.monotonic() - began:.1f}s)", flush=True)
    seconds = time.monotonic() - started
    print(f"== {seconds / 60:.1f} min, commit {commit}", flush=True)
    if write:
        report.write(figures, context=context, failed=failed, started=started_at, seconds=seconds, commit=commit,
                     scaled=SCALED)  # fmt: skip
        print(f"wrote {report.MD_PATH} and {report.JSON_PATH}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
