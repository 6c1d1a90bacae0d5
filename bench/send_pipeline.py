"""The send pipeline end to end: producers -> Redis -> a Celery worker -> the simulator, against the
simulator's own speed measured in the same run.

Real processes, as in production: redis-server (AOF), `lightsms-sim`, one `celery -A worker worker`
(threads) and beat. The limiter is set far above what one machine can do, so it is not what is measured.
"""

from __future__ import annotations

import time

from bench import sim_rps
from devtools.redis_server import RedisServer
from devtools.sim_process import SimProcess
from devtools.stack import Stack, phones

__all__ = ["main"]

SINGLES = 1000
BULK = 5000


def _timed(stack: Stack, ids: list[str], started: float) -> float:
    stack.wait_settled(ids, timeout=300)
    return time.monotonic() - started


def main() -> dict[str, str]:
    sim_args = ("--balance", "1000000000")
    with RedisServer(appendonly=True) as redis_server, \
            SimProcess(login=sim_rps.LOGIN, api_key=sim_rps.API_KEY, extra_args=sim_args) as sim:  # fmt: skip
        stack = Stack(redis_server, sim, LIGHTSMS_LOGIN=sim_rps.LOGIN, LIGHTSMS_API_KEY=sim_rps.API_KEY,
                      LIGHTSMS_MAX_RPS="1000", LIGHTSMS_WORKER_CONCURRENCY="16")  # fmt: skip
        try:
            stack.start_worker("bench")
            stack.start_beat()
            _timed(stack, [stack.producer.send(p, "warm-up") for p in phones(50, start=900000)], time.monotonic())

            started = time.monotonic()
            single_ids = [stack.producer.send(p, "One of many single messages") for p in phones(SINGLES)]
            enqueue_singles = time.monotonic() - started
            singles = _timed(stack, single_ids, started)

            started = time.monotonic()
            bulk_ids = stack.producer.send_many(phones(BULK, start=100000), "One text to many recipients")
            enqueue_bulk = time.monotonic() - started
            bulk = _timed(stack, bulk_ids, started)
        finally:
            stack.stop()
        baseline = sim_rps.run(sim_rps.requests_sender, sim.base_url, threads=1, max_requests=2000)

    sim_rate = float(baseline["rps"])
    singles_rate = SINGLES / singles
    return {
        "simulator alone, one keep-alive client": f"{sim_rate:.0f} send.php/s",
        "pipeline, single messages (one send.php each)": f"{singles_rate:.0f} msg/s = {singles_rate / sim_rate:.2f}x"
        " the simulator alone",
        "pipeline, send_many (50 phones per send.php)": f"{BULK / bulk:.0f} msg/s ({BULK / 50 / bulk:.0f} send.php/s)",
        "producer.send, enqueue only": f"{SINGLES / enqueue_singles:.0f} calls/s",
        "producer.send_many, enqueue only": f"{BULK / enqueue_bulk:.0f} recipients/s",
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
