"""send.php requests per second the simulator answers, to keep-alive clients in another process.

The simulator runs as the `lightsms-sim` CLI so client and server don't share a GIL. Each request
is signed afresh, as the real client does. Three runs, each bounded by a request count and a time:
  - one requests.Session (one keep-alive connection),
  - four threads, each with its own requests.Session,
  - one raw http.client connection: how much of the single-client figure is the client's own cost.
"""

from __future__ import annotations

import http.client
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

from lightsms.signing import sign

__all__ = ["main"]

MAX_REQUESTS = 3000
MAX_SECONDS = 20.0
LOGIN, API_KEY = "bench", "bench-key"
LISTENING = re.compile(r"lightsms-sim listening on (http://\S+)")


@contextmanager
def simulator_process() -> Iterator[str]:
    """A `lightsms-sim` subprocess on a free port; yields its base URL."""
    script = Path(sys.executable).with_name("lightsms-sim")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "simulator"]
    argv += ["--port", "0", "--login", LOGIN, "--api-key", API_KEY, "--balance", "1000000000"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        match = LISTENING.match(process.stdout.readline())
        if not match:
            raise RuntimeError("lightsms-sim did not print its listening line")
        yield match.group(1) + "/external/get/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def send_query(phone: str) -> str:
    params = {
        "login": LOGIN,
        "phone": phone,
        "text": "Benchmark message",
        "sender": "LightSMS",
        "timestamp": str(int(time.time())),
        "return": "json",
    }
    params["signature"] = sign(params, API_KEY)
    return urlencode(params)


Sender = Callable[[str], tuple[int, bytes]]


def requests_sender(base_url: str) -> Sender:
    session = requests.Session()
    session.trust_env = False  # loopback: skip the per-request proxy lookups in the environment

    def send(query: str) -> tuple[int, bytes]:
        response = session.get(f"{base_url}send.php?{query}", timeout=10)
        return response.status_code, response.content

    return send


def raw_sender(base_url: str) -> Sender:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def send(query: str) -> tuple[int, bytes]:
        connection.request("GET", f"{parts.path}send.php?{query}")
        response = connection.getresponse()
        return response.status, response.read()

    return send


def run(
    make_sender: Callable[[str], Sender], base_url: str, *, threads: int, max_requests: int = MAX_REQUESTS
) -> dict[str, str]:
    """`threads` clients share max_requests and MAX_SECONDS; report throughput and latency."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    budget = iter(range(max_requests))
    deadline = time.monotonic() + MAX_SECONDS

    def client(n: int) -> None:
        send = make_sender(base_url)
        phone = f"37061{n:06d}"
        while time.monotonic() < deadline:
            with lock:
                if next(budget, None) is None:
                    return
            query = send_query(phone)
            started = time.perf_counter()
            status, body = send(query)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                if status != 200 or b'"error":"0"' not in body:
                    failures.append(f"{status} {body[:80]!r}")

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": str(len(latencies)),
        "failures": str(len(failures)),
        "seconds": f"{elapsed:.2f}",
        "rps": f"{len(latencies) / elapsed:.0f}",
        "p50_ms": f"{statistics.median(latencies) * 1000:.2f}",
        "p99_ms": f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.2f}",
    }


def _line(result: dict[str, str]) -> str:
    return (
        f"{result['rps']} req/s ({result['requests']} in {result['seconds']} s, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, failures {result['failures']})"
    )


def main() -> dict[str, str]:
    with simulator_process() as base_url:
        run(requests_sender, base_url, threads=1, max_requests=200)  # warm-up: imports, caches, pools
        single = run(requests_sender, base_url, threads=1)
        four = run(requests_sender, base_url, threads=4)
        raw = run(raw_sender, base_url, threads=1)
    return {
        "requests.Session, 1 client": _line(single),
        "requests.Session, 4 threads": _line(four),
        "http.client, 1 client": _line(raw),
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
