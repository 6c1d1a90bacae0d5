"""`lightsms-queue metrics`: the domain metrics read from Redis and the broker at each scrape."""

from __future__ import annotations

import time

import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cli.metrics import registry_for
from core import keys
from core.pause import AccountCircuit
from core.settings import load_core_settings
from core.stats import Stats
from devtools.polling import wait_until
from devtools.ports import free_port
from devtools.processes import ManagedProcess, venv_executable
from producers.producer import Producer


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def test_every_domain_metric_is_read_from_redis_and_the_broker(redis_server, redis_client):
    settings = load_core_settings(redis_url=redis_server.url, lightsms_sender="LightSMS")
    producer = Producer(settings, redis_client=redis_server.client())
    producer.send("37060000001", "hi", priority="high")
    producer.send("37060000002", "later", send_at=time.time() + 600)
    Stats(redis_client).record({"sent": 5, "failed:16": 2, "unknown": 1, "delivered": 3, "limiter_waits": 4,
                                "limiter_wait_ms": 1500, "limiter_full": 1, "limiter_late": 2}, parts=7)  # fmt: skip
    redis_client.zadd(keys.DUE_INDEX, {"late-one": time.time() - 90})
    AccountCircuit(redis_client, login="acme").pause(reason="insufficient funds", code=32, seconds=300)
    redis_client.hset(keys.POLLER_HEALTH, "incoming_ok_at", time.time() - 12)

    found = samples(generate_latest(registry_for(settings)).decode())
    assert found[("lightsms_sent_total", ())] == 5
    assert found[("lightsms_failed_total", (("code", "16"),))] == 2
    assert found[("lightsms_unknown_total", ())] == 1
    assert found[("lightsms_delivery_total", (("status", "delivered"),))] == 3
    assert found[("lightsms_parts_total", ())] == 7
    assert found[("lightsms_limiter_waits_total", ())] == 4 and found[("lightsms_limiter_full_total", ())] == 1
    assert found[("lightsms_limiter_wait_seconds_total", ())] == 1.5
    assert found[("lightsms_limiter_late_total", ())] == 2
    assert found[("lightsms_messages", (("priority", "high"), ("state", "QUEUED")))] == 1
    assert found[("lightsms_messages", (("priority", ""), ("state", "SCHEDULED|DEFERRED")))] == 2
    assert found[("lightsms_queue_depth", (("queue", "sms.high"),))] == 1
    assert found[("lightsms_queue_depth", (("queue", "sms.inbound"),))] == 0
    assert 89 <= found[("lightsms_due_lag_seconds", ())] < 120
    assert found[("lightsms_account_paused", (("code", "32"), ("login", "acme")))] == 1
    assert 11 <= found[("lightsms_poll_age_seconds", (("poller", "incoming"),))] < 60
    assert found[("lightsms_poll_age_seconds", (("poller", "status"),))] == float("inf")


def test_the_exporter_serves_over_http(redis_server, redis_client):
    port = free_port()
    exporter = ManagedProcess([venv_executable("lightsms-queue"), "metrics", "--port", str(port)], name="metrics",
                              env={"REDIS_URL": redis_server.url}, ready=r"serving metrics")  # fmt: skip
    exporter.start()
    try:
        exporter.wait_ready(timeout=20)
        Stats(redis_client).record({"sent": 2})
        body = wait_until(lambda: _scrape(port), timeout=10)
        assert samples(body)[("lightsms_sent_total", ())] == 2
    finally:
        exporter.terminate(timeout=10)


def _scrape(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return None


def test_a_scrape_never_fails_on_values_written_wrong_or_a_redis_that_is_gone(redis_server, redis_client):
    settings = load_core_settings(redis_url=redis_server.url)
    redis_client.hset(keys.STATS, mapping={"sent": "abc", "failed:7": "x", "cost_nanos": "1.5", "unknown": "2"})
    redis_client.hset(keys.POLLER_HEALTH, "incoming_ok_at", "garbage")
    redis_client.set(keys.pause("demo"), '{"reason": "by hand", "until": 1e20}')
    redis_client.set(keys.DUE_INDEX, "not a sorted set")
    found = samples(generate_latest(registry_for(settings)).decode())
    assert found[("lightsms_unknown_total", ())] == 2 and found[("lightsms_sent_total", ())] == 0
    assert found[("lightsms_scrape_errors_total", (("section", "due_lag"),))] == 1
    assert found[("lightsms_poll_age_seconds", (("poller", "incoming"),))] == float("inf")
    gone = load_core_settings(redis_url="redis://127.0.0.1:1/0")
    found = samples(generate_latest(registry_for(gone)).decode())
    assert found[("lightsms_scrape_errors_total", (("section", "counters"),))] == 1


def test_a_port_in_use_is_one_line(redis_server):
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [venv_executable("lightsms-queue"), "metrics", "--port", str(port)]
        env = {"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2 and "cannot listen" in result.stderr and "Traceback" not in result.stderr
