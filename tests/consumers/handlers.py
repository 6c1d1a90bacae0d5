"""Handlers the consumer tests run in real processes (`lightsms-queue consume tests.consumers.handlers:...`).

They say what happened through the environment's LIGHTSMS_TEST_RECORD file: one event id a line,
appended and flushed before the handler returns, so a test reads exactly what ran, even across a
broker restart (the file is not on the broker).
"""

from __future__ import annotations

import os
import time
from typing import Any

import consumers
from core.contract import event_id

NOT_CALLABLE = "a string, not a handler"


def _append(line: str) -> None:
    path = os.environ["LIGHTSMS_TEST_RECORD"]
    with open(path, "a", encoding="utf-8") as record:
        record.write(line + "\n")
        record.flush()
        os.fsync(record.fileno())


def record(event: dict[str, Any]) -> None:
    """Append the event id; LIGHTSMS_TEST_WORK_MS stands for the handler's work (default none)."""
    work = float(os.environ.get("LIGHTSMS_TEST_WORK_MS", "0")) / 1000
    if work:
        time.sleep(work)
    _append(event_id(event))


def always_fails(event: dict[str, Any]) -> None:
    _append(event_id(event))
    raise RuntimeError("the handler broke on purpose")


@consumers.handler(queue="sms.status", max_retries=1)
def on_status(event: dict[str, Any]) -> None:
    _append(event_id(event))
