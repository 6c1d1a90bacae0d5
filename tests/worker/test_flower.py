"""Flower shows our tasks by message id, behind a password: no phone number or text in task arguments,
argsrepr or names, checked through Flower's own API."""

from __future__ import annotations

import json

import requests

from devtools.polling import wait_until
from devtools.ports import free_port
from devtools.processes import ManagedProcess, venv_executable
from tests.worker.stack import QUEUES, Stack, phones

PASSWORD = "flower-test-password"


def test_flower_asks_for_a_password_and_shows_tasks_by_message_id_only(module_redis, sim_process):
    stack = Stack(module_redis, sim_process)
    port = free_port()
    flower = ManagedProcess(
        [venv_executable("celery"), "-A", "worker", "flower", "--address=127.0.0.1", f"--port={port}"],
        name="flower", env={**stack.env, "FLOWER_BASIC_AUTH": f"admin:{PASSWORD}"}, ready=r"Visit me at",
    )  # fmt: skip
    try:
        # As in production: heartbeats on, which keeps the event dispatcher that Flower switches task events on in.
        worker = ManagedProcess([venv_executable("celery"), "-A", "worker", "worker", "-n", "flowered@%h",
                                 "--loglevel=INFO", "-Q", QUEUES], name="worker-flowered", env=stack.env,
                                ready=r"@\S+ ready\.")  # fmt: skip
        stack.processes.append(worker.start())
        worker.wait_ready(timeout=30)
        stack.start_beat()
        flower.start()
        flower.wait_ready(timeout=30)
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/api/tasks", timeout=10).status_code == 401
        recipients = phones(3, start=5151000)
        text = "Secret text 5151 for Flower"
        # Flower switches task events on in running workers every few seconds: send once it has.
        worker.wait_output(r"Events of group \{task\} enabled by remote", timeout=30)
        ids = stack.producer.send_many(recipients, text) + [stack.producer.send("37060000999", text)]
        stack.wait_settled(ids, timeout=30)
        tasks = wait_until(lambda: _sends(base) or None, timeout=30)
        shown = json.dumps(tasks)
        assert any(message_id in shown for message_id in ids), "Flower does not show the message ids"
        for secret in (*recipients, "37060000999", text, "demo-key"):
            assert secret not in shown
        assert all(task["name"] in ("lightsms.send", "lightsms.move_due", "lightsms.sweep", None) or
                   task["name"].startswith("lightsms.") for task in tasks.values())  # fmt: skip
    finally:
        flower.terminate(timeout=10)
        stack.stop()


def _get(base: str, path: str) -> dict:
    try:
        reply = requests.get(base + path, auth=("admin", PASSWORD), timeout=10)
    except requests.ConnectionError:
        return {}
    return reply.json() if reply.ok else {}


def _sends(base: str) -> dict:
    return {k: v for k, v in _get(base, "/api/tasks").items() if v.get("name") == "lightsms.send"}
