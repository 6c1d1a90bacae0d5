"""Enqueue only (no worker running): `producer.send()` calls and `send_many` recipients per second,
against a loop of Celery `apply_async` (the naive app's task, the same Redis), first on Redis
configured like compose (fsync every second), then with `appendfsync always` (every write on disk
before the reply).
"""

from __future__ import annotations

import time

from bench import naive_app
from bench._common import RUNS, Figure, compose_redis, make_producer, phones, timed_loop

__all__ = ["main"]

CALLS = 2000
RECIPIENTS = 5000
WARM_UP = 100
TEXT = "Your code is 1234"
FSYNC = {"everysec": "", "always": "_always"}


def _measure(fsync: str) -> dict[str, Figure]:
    suffix, what = FSYNC[fsync], f"appendfsync {fsync}"
    sends, bulks, loops = [], [], []
    with compose_redis(fsync=fsync) as redis_server:
        url = redis_server.url
        producer = make_producer(url)
        app = naive_app.make_app(url)
        task = app.tasks["naive.send"]
        try:
            warm = phones(WARM_UP, start=900_000)
            for phone in warm:
                producer.send(phone, TEXT)
                task.apply_async(args=[phone, TEXT])
            producer.send_many(warm, TEXT)
            for run in range(RUNS):
                batch = phones(CALLS, start=100_000 + run * CALLS)

                def publish(i: int, batch: list[str] = batch) -> None:
                    task.apply_async(args=[batch[i], TEXT])

                def send(i: int, batch: list[str] = batch) -> None:
                    producer.send(batch[i], TEXT)

                loops.append(timed_loop(publish, CALLS))
                sends.append(timed_loop(send, CALLS))
                many = phones(RECIPIENTS, start=1_000_000 + run * RECIPIENTS)
                started = time.perf_counter()
                producer.send_many(many, TEXT)
                bulks.append(RECIPIENTS / (time.perf_counter() - started))
        finally:
            app.close()
    return {
        f"apply_async_rate{suffix}": Figure(f"Celery apply_async loop, {CALLS} calls, {what}", "calls/s", loops),
        f"producer_send_rate{suffix}": Figure(f"producer.send() loop, {CALLS} calls, {what}", "calls/s", sends),
        f"send_many_enqueue_rate{suffix}": Figure(f"producer.send_many of {RECIPIENTS} recipients, {what}",
                                                  "recipients/s", bulks),
    }  # fmt: skip


def main() -> dict[str, Figure]:
    return {**_measure("everysec"), **_measure("always")}


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
