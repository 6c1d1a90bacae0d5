"""Traffic end to end, the worker and beat at DEBUG, Flower watching: the API key, full phone numbers
and message text appear nowhere but in the message records. Searched in every process's log, in
every other Redis key and value (the broker's queues and unacked tasks included, as the broker is
this Redis), and through Flower's own API, which must also ask for its password."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import redis
import requests

from core import keys
from core.states import State
from devtools.polling import wait_until
from devtools.ports import free_port
from devtools.processes import ManagedProcess, venv_executable
from tests.worker.stack import QUEUES, Stack, phones

PASSWORD = "flower-test-password"


def test_no_key_phone_or_text_anywhere_but_the_records(module_redis, sim_process):
    stack = Stack(module_redis, sim_process, LIGHTSMS_STATUS_SCHEDULE="1,2", LIGHTSMS_STATUS_INTERVAL="1",
                  LIGHTSMS_LOG_FORMAT="json")  # fmt: skip
    stack.reset()
    port = free_port()
    flower = ManagedProcess(
        [venv_executable("celery"), "-A", "worker", "flower", "--address=127.0.0.1", f"--port={port}"],
        name="flower", env={**stack.env, "FLOWER_BASIC_AUTH": f"admin:{PASSWORD}"}, ready=r"Visit me at",
    )  # fmt: skip
    try:
        # As in production: heartbeats on, which keeps the event dispatcher that Flower switches task events on in.
        worker = ManagedProcess([venv_executable("celery"), "-A", "worker", "worker", "-n", "flowered@%h",
                                 "--loglevel=DEBUG", "-Q", QUEUES], name="worker-flowered", env=stack.env,
                                ready=r"@\S+ ready\.")  # fmt: skip
        stack.processes.append(worker.start())
        worker.wait_ready(timeout=30)
        stack.start_beat()
        flower.start()
        flower.wait_ready(timeout=30)
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/api/tasks", timeout=10).status_code == 401
        recipients = [*phones(3, start=5151000), "37060000999"]
        text = "Secret text 5151 for Flower"
        stack.admin.faults(phone_errors={recipients[1]: 16})  # a FAILED one, logged at DEBUG too
        # Flower switches task events on in running workers every few seconds: send once it has.
        worker.wait_output(r"Events of group \{task\} enabled by remote", timeout=30)
        ids = stack.producer.send_many(recipients[:3], text) + [stack.producer.send(recipients[3], text)]
        stack.wait_settled(ids, timeout=30)
        # Delivery statuses polled and published on sms.status as well.
        stack.wait_settled(ids, timeout=30, settled=frozenset({State.DELIVERED, State.FAILED}))
        tasks = wait_until(lambda: _sends(base) or None, timeout=30)
        shown = json.dumps(tasks)
        assert any(message_id in shown for message_id in ids), "Flower does not show the message ids"
        assert all(task["name"].startswith("lightsms.") for task in tasks.values())
        secrets = (*recipients, text, "demo-key")
        for secret in secrets:
            assert secret not in shown, f"Flower's API shows {secret!r}"
        redis_dump = _everything_but_the_records(stack.redis)
        assert "sms.status" in redis_dump and ids[0] in redis_dump  # the dump reaches the broker's keys
        for secret in secrets:
            assert secret not in redis_dump, f"a Redis key or value other than a record holds {secret!r}"
    finally:
        flower.terminate(timeout=10)
        stack.stop()
    for process in (worker, flower, *stack.processes):
        log = process.log_path.read_text()
        for secret in secrets:
            assert secret not in log, f"{process.name}'s log holds {secret!r}"



def _everything_but_the_records(client: redis.Redis) -> str:
    """Every key name and value in Redis, as text, except the message records themselves."""
    parts: list[str] = []
    for key in client.scan_iter(count=500):
        parts.append(key)
        if key.startswith(keys.MESSAGE_PREFIX):
            continue
        kind = client.type(key)
        if kind == "string":
            parts.append(str(client.get(key)))
        elif kind == "list":
            parts += client.lrange(key, 0, -1)
        elif kind == "hash":
            parts += [f"{k}={v}" for k, v in client.hgetall(key).items()]
        elif kind == "set":
            parts += list(client.smembers(key))
        elif kind == "zset":
            parts += [str(member) for member in client.zrange(key, 0, -1)]
    return "\n".join(parts)


def _get(base: str, path: str) -> dict:
    try:
        reply = requests.get(base + path, auth=("admin", PASSWORD), timeout=10)
    except requests.ConnectionError:
        return {}
    return reply.json() if reply.ok else {}


def _sends(base: str) -> dict:
    return {k: v for k, v in _get(base, "/api/tasks").items() if v.get("name") == "lightsms.send"}


def test_flower_never_starts_without_a_password():
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLOWER_")}
    refused = subprocess.run([venv_executable("celery"), "-A", "worker", "flower", f"--port={free_port()}"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and "FLOWER_BASIC_AUTH" in refused.stderr


def test_what_counts_as_a_password_for_flower():
    from worker.celery_app import refuse_flower_without_auth

    refuse_flower_without_auth(["celery", "-A", "worker", "worker", "-n", "flower@host"], {})  # not Flower
    refuse_flower_without_auth(["celery", "-A", "worker", "flower"], {"FLOWER_BASIC_AUTH": "a:b"})
    refuse_flower_without_auth(["celery", "-A", "worker", "flower", "--basic-auth=a:b"], {})
    with pytest.raises(SystemExit):
        refuse_flower_without_auth(["celery", "-A", "worker", "flower", "--port=5555"], {"FLOWER_BASIC_AUTH": ""})


def test_only_the_flower_subcommand_is_checked():
    from worker.celery_app import refuse_flower_without_auth

    refuse_flower_without_auth(["celery", "-A", "flower", "worker"], {})  # an app named flower
    refuse_flower_without_auth(["celery", "--app", "worker", "beat", "flower"], {})
    with pytest.raises(SystemExit):
        refuse_flower_without_auth(["celery", "--app=worker", "flower", "--conf=/dev/null"], {})
