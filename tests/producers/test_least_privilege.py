"""Least privilege: a service that only enqueues holds REDIS_URL, never the LightSMS credentials.

Each test runs a real process with a minimal environment (PATH, REDIS_URL, the production base URL):
a producer enqueues without credentials and never reads LIGHTSMS_API_KEY; a worker refuses to start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core import keys
from core.settings import PRODUCTION_BASE_URL, CoreSettings

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-live-7f3c9a41d2e8b6"  # a value no library would make up


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "REDIS_URL": redis_url, "LIGHTSMS_BASE_URL": PRODUCTION_BASE_URL, **extra}


def _python(code: str, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


SEND = """
import json, producers
message_id = producers.send("+370 612 34567", "Your code is 1234", sender="LightSMS")
print(json.dumps({"id": message_id}))
"""


def test_a_producer_with_only_redis_url_enqueues_against_production(redis_server, redis_client):
    out = _python(SEND, _env(redis_server.url))
    record = redis_client.hgetall(keys.message(str(out["id"])))
    assert record["state"] == "QUEUED" and record["phone"] == "37061234567"
    assert redis_client.zscore(keys.queued_index("normal"), str(out["id"])) is not None
    assert redis_client.llen("sms.normal") == 1  # and its task is published


# Every lookup of a variable by name goes through os._Environ.__getitem__ (get, __contains__, items(),
# copy() and os.getenv all end there), so recording it records every value the process ever read.
# pydantic-settings' own environment source would read them all (it iterates os.environ.items()).
SPY_AND_SEND = """
import gc, json, os, sys, types
looked = set()
environ_class = type(os.environ)
for name in ("__getitem__", "get", "__contains__"):
    original = getattr(environ_class, name)
    def spy(self, key, *args, _original=original):
        looked.add(key)
        return _original(self, key, *args)
    setattr(environ_class, name, spy)

import producers
message_id = producers.send("+370 612 34567", "Your code is 1234", sender="LightSMS")
producer = producers.default_producer()

def holders(root):
    # What, reachable from root, holds the key's value: leaving out modules and the environment
    # itself (which holds the key, as it must). The value lives only in this function's locals.
    import posix
    secret = os.environ._data[b"LIGHTSMS_API_KEY"]  # bytes, read without a lookup
    skip = {id(os.environ), id(os.environ._data), id(os.environb), id(posix.environ)}
    seen, stack, found, walked = set(), [root], [], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or id(obj) in skip or isinstance(obj, types.ModuleType):
            continue
        seen.add(id(obj))
        walked += 1
        for child in gc.get_referents(obj):
            if isinstance(child, str) and secret.decode() in child or (
                    isinstance(child, (bytes, bytearray)) and secret in child):
                found.append(f"{type(obj).__name__} {str(obj)[:80]}")
            else:
                stack.append(child)
    return found, walked

# Its settings, Redis and Celery clients, their pools, caches and closures, and through functions'
# globals much of the rest of the heap.
found, walked = holders(producer)

print(json.dumps({
    "id": message_id,
    "looked_up_key": "LIGHTSMS_API_KEY" in looked,
    "looked_up": sorted(k for k in looked if isinstance(k, str)),
    "settings": type(producer.settings).__name__,
    "walked": walked,
    "holders": found,
}))
"""


def test_a_producer_process_never_reads_the_api_key(redis_server, redis_client):
    # The key is in the environment (a service might inherit it), yet the producer never reads it.
    out = _python(SPY_AND_SEND, _env(redis_server.url, LIGHTSMS_API_KEY=API_KEY, LIGHTSMS_LOGIN="acme"))
    assert redis_client.hget(keys.message(str(out["id"])), "state") == "QUEUED"
    assert out["looked_up_key"] is False, out["looked_up"]
    assert "REDIS_URL" in out["looked_up"]  # the spy saw the variables the producer did read
    assert out["settings"] == "CoreSettings"
    assert out["holders"] == [] and int(out["walked"]) > 1000  # type: ignore[call-overload]
    assert not {"lightsms_api_key", "lightsms_login"} & set(CoreSettings.model_fields)


def test_a_worker_without_credentials_refuses_to_start_in_one_line(redis_server):
    celery = str(Path(sys.executable).parent / "celery")
    result = subprocess.run([celery, "-A", "worker", "worker"], env=_env(redis_server.url), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "lightsms-queue: configuration error: LIGHTSMS_LOGIN: required when LIGHTSMS_BASE_URL is not local"
    ]
