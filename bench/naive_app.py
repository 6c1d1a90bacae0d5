"""The baseline: what a team would write in an afternoon instead of this project.

One Celery task per SMS that signs the request and calls LightSMS's send.php with a requests.Session:
no store, no exactly-once, no limiter, no retries. Run as

    NAIVE_BROKER_URL=redis://... NAIVE_BASE_URL=http://.../external/get/ \
        celery -A bench.naive_app worker --loglevel=INFO

with the same worker settings as ours: the threads pool of 8, acks_late, prefetch 1. `noop` is the
same app's task that does nothing: Celery's own ceiling on this machine and broker.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import requests
from celery import Celery

BASE_URL = os.environ.get("NAIVE_BASE_URL", "http://127.0.0.1:8765/external/get/")
LOGIN = os.environ.get("NAIVE_LOGIN", "demo")
API_KEY = os.environ.get("NAIVE_API_KEY", "demo-key")
_local = threading.local()


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def sign(params: dict[str, str], api_key: str) -> str:
    """LightSMS's signature: md5 of the values sorted by name, then the key."""
    joined = "".join(params[name] for name in sorted(params))
    return hashlib.md5((joined + api_key).encode()).hexdigest()


def send(phone: str, text: str) -> None:
    params = {"login": LOGIN, "phone": phone, "text": text, "sender": "LightSMS",
              "timestamp": str(int(time.time())), "return": "json"}  # fmt: skip
    params["signature"] = sign(params, API_KEY)
    response = _session().get(BASE_URL + "send.php", params=params, timeout=10)
    response.raise_for_status()


def noop(phone: str, text: str) -> None:
    return None


def make_app(broker_url: str) -> Celery:
    """The naive app on `broker_url`; the bench's apply_async loops build their own on each Redis."""
    celery = Celery("naive", broker=broker_url, set_as_current=False)
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=8,
        broker_connection_retry_on_startup=True,
    )
    celery.task(name="naive.send")(send)
    celery.task(name="naive.noop")(noop)
    return celery


app = make_app(os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/0"))
