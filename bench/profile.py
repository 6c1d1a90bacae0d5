"""One quick look at the send path, for performance work between full `make bench` runs:

    python -m bench.profile singles [COUNT]     # COUNT single send() calls (default 2,000)
    python -m bench.profile bulk [COUNT]        # one send_many to COUNT recipients (default 20,000)
    ... [--spy FILE]                            # and py-spy (not a dependency) samples the worker into FILE

One worker and beat on Redis configured like compose, the simulator at 0 ms. Prints the end-to-end
rate, CPU per message of the worker, Redis and this (enqueueing) process, and the Redis commands per
message by command (INFO commandstats, broker included, Lua's own commands counted as Redis counts
them). With --spy, the worker's samples are py-spy's raw format, only threads holding the GIL (its
CPU, not its waiting). One run: this machine's figures vary by 10-20 % from run to run, so compare
changes with `make bench`, whose ratios are taken in one run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

from bench._common import (
    BenchStack,
    CpuMeter,
    accepted_times,
    command_calls,
    commands_delta,
    compose_redis,
    phones,
    simulator,
    wait_drained,
)
from devtools.processes import venv_executable

QUEUES = ["sms.high", "sms.normal", "sms.bulk"]
TEXT = "Your code is 1234"


def _spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or venv_executable("py-spy")
    argv = [exe, "record", "-p", str(pid), "-o", out, "-f", "raw", "-r", "200", "--nonblocking", "--gil"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(kind: str, count: int, spy_to: str | None) -> None:
    with compose_redis() as redis_server, simulator() as sim:
        stack = BenchStack(redis_server, sim)
        try:
            [worker] = stack.start_workers(1)
            stack.start_beat()
            stack.producer.send_many(phones(50, start=900_000), TEXT)  # warm-up
            accepted_times(stack.admin, 50, timeout=60)
            stack.reset_sim()
            assert worker.pid is not None
            spy = _spy(worker.pid, spy_to) if spy_to else None
            meter = CpuMeter(worker.pid, stack.redis)
            batch = phones(count, start=100_000)
            cpu_before, before = meter.read(), command_calls(stack.redis)
            started = time.time()
            if kind == "bulk":
                stack.producer.send_many(batch, TEXT)
            else:
                for phone in batch:
                    stack.producer.send(phone, TEXT)
            enqueued = time.time() - started
            _, own = wait_drained(stack.redis, QUEUES, timeout=600, interval=0.2)
            accepted = accepted_times(stack.admin, count, timeout=120, interval=0.5)
            cpu = meter.per_message_ms(cpu_before, meter.read(), count)
            delta = commands_delta(before, command_calls(stack.redis), own=own)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        finally:
            stack.stop()
    print(f"{kind}, {count:,} messages: {count / (max(accepted.values()) - started):,.0f} msg/s end to end, "
          f"enqueued at {count / enqueued:,.0f}/s")  # fmt: skip
    print("CPU ms per message: " + ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items()))
    print("Redis commands per message: " + ", ".join(
        f"{name} {calls / count:.2f}" for name, calls in delta.items() if calls / count >= 0.01))  # fmt: skip


def main(argv: list[str]) -> int:
    spy_to = None
    if "--spy" in argv:
        at = argv.index("--spy")
        spy_to = argv[at + 1]
        argv = argv[:at] + argv[at + 2 :]
    if not argv or argv[0] not in ("singles", "bulk"):
        print(__doc__, file=sys.stderr)
        return 2
    count = int(argv[1]) if len(argv) > 1 else (2000 if argv[0] == "singles" else 20_000)
    run(argv[0], count, spy_to)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
