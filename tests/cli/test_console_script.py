"""Every `lightsms-queue` command run as a user runs it: the installed console script, in a shell
with only REDIS_URL and the simulator's base URL set. Read commands answer JSON with --json."""

from __future__ import annotations

import json
import subprocess
import time

from core import keys
from core.stats import Stats
from devtools.polling import wait_until
from devtools.ports import free_port
from devtools.processes import ManagedProcess, venv_executable

SCRIPT = venv_executable("lightsms-queue")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60)


def test_every_read_command_answers_json_and_masks_numbers(redis_server, redis_client, sim_process, sim_admin):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_server.url, "LIGHTSMS_SENDER": "LightSMS",
           "LIGHTSMS_BASE_URL": sim_process.base_url}  # fmt: skip
    message_id = run(env, "send", "37060000001", "Hello").stdout.strip()
    assert run(env, "optout", "add", "37060000002").returncode == 0
    redis_client.lpush(keys.INBOUND_REJECTED, json.dumps({"id": "9", "reason": "missing date", "at": time.time(),
                                                          "fields": {"sender": "37060000003"}}))  # fmt: skip
    Stats(redis_client).record({"sent": 1})
    for args in (["stats"], ["status", message_id], ["dead", "list"], ["unknown", "list"], ["optout", "list"],
                 ["optout", "check", "37060000002"], ["inbound", "rejected"], ["dead-events", "list"],
                 ["balance"], ["senders"]):  # fmt: skip
        answer = run(env, *args, "--json")
        assert answer.returncode == 0, (args, answer.stderr)
        json.loads(answer.stdout)
        for phone in ("37060000001", "37060000002", "37060000003"):
            assert phone not in answer.stdout, (args, answer.stdout)
    shown = run(env, "get", message_id)
    assert shown.returncode == 0 and json.loads(shown.stdout)["phone"] == "370*****001"
    assert "37060000001" in run(env, "get", message_id, "--show-phones").stdout
    assert run(env, "get", "no-such-id").returncode == 1
    assert run(env, "send", "37060000001").returncode == 2  # usage: the text is missing
    assert run(env, "no-such-command").returncode == 2


def test_sim_runs_the_simulator():
    port = free_port()
    sim = ManagedProcess([SCRIPT, "sim", "--host", "127.0.0.1", "--port", str(port)], name="cli-sim")
    sim.start()
    try:
        import requests

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_until(healthy, timeout=20, message="lightsms-queue sim to answer")
    finally:
        sim.terminate(timeout=10)
