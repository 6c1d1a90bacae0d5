"""A provider 100 ms away (simulator fault latency_ms=100 on every LightSMS endpoint): single send()
calls end to end through our worker, and the seed documents' way (timestamp.php, then a signed
send.php, one message after another). Latency should cost concurrency, not throughput.
"""

from __future__ import annotations

import time

from bench._common import (
    API_ENDPOINTS,
    RUNS,
    BenchStack,
    Figure,
    accepted_times,
    compose_redis,
    phones,
    seed_way,
    simulator,
    wait_drained,
)

__all__ = ["main"]

LATENCY_MS = 100
SINGLES = 1000
SEED_MESSAGES = 25  # 2 x 100 ms each: 5 s a run
WARM_UP = 50
TEXT = "Your code is 1234"
OUR_QUEUES = ["sms.high", "sms.normal", "sms.bulk"]


def main() -> dict[str, Figure]:
    faults = {"latency_ms": LATENCY_MS, "endpoints": API_ENDPOINTS}
    rates, seed_rates = [], []
    with compose_redis() as redis_server, simulator() as sim:
        stack = BenchStack(redis_server, sim)
        try:
            stack.reset_sim(**faults)
            for run in range(RUNS):
                seed_rates.append(seed_way(sim.base_url, phones(SEED_MESSAGES, start=500_000 + run * 100)))
            stack.start_workers(1)
            stack.start_beat()
            stack.reset_sim(**faults)
            for phone in phones(WARM_UP, start=900_000):
                stack.producer.send(phone, "warm-up")
            accepted_times(stack.admin, WARM_UP, timeout=60)
            for run in range(RUNS):
                stack.reset_sim(**faults)
                batch = phones(SINGLES, start=100_000 + run * SINGLES)
                started = time.time()
                for phone in batch:
                    stack.producer.send(phone, TEXT)
                wait_drained(stack.redis, OUR_QUEUES, timeout=300, interval=0.2)
                accepted = accepted_times(stack.admin, SINGLES, timeout=120)
                rates.append(SINGLES / (max(accepted.values()) - started))
        finally:
            stack.stop()
    return {
        "ours_singles_rate_100ms": Figure(f"ours, {SINGLES} single send() end to end, simulator at {LATENCY_MS} ms",
                                          "msg/s", rates),
        "seed_way_rate_100ms": Figure(f"the seed documents' way (timestamp.php + send.php, sequential), "
                                      f"{SEED_MESSAGES} messages, {LATENCY_MS} ms", "msg/s", seed_rates),
    }  # fmt: skip


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
