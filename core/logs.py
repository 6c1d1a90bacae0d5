"""Logging for every process (worker, beat, consumers): `--log-format json|text`, ids bound, numbers masked.

- JSON (python-json-logger) or text, one line per record, on stderr.
- Every line carries the Celery task id and the message ids being worked on, when there are any
  (`bound_message_ids` sets them for the current thread or task).
- A last line of defence masks anything shaped like a phone number (8 to 15 digits standing alone)
  in the rendered message; the code never logs message text in the first place.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from lightsms.phones import mask_phone

__all__ = ["LOG_FORMATS", "bound_message_ids", "configure_logging", "mask_numbers"]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"
# 8 to 15 digits, optionally after a +, not part of a longer word (a 22-digit id_sms or a hex id stays).
_NUMBER = re.compile(r"(?<![\w+])\+?\d{8,15}(?!\w)")
_message_ids: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("lightsms_message_ids", default=())


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(lambda match: mask_phone(match.group(0).lstrip("+")), text)


@contextmanager
def bound_message_ids(message_ids: Sequence[str]) -> Iterator[None]:
    """Every log line inside names these message ids."""
    token = _message_ids.set(tuple(message_ids))
    try:
        yield
    finally:
        _message_ids.reset(token)


class ContextFilter(logging.Filter):
    """Adds task_id and message_ids to each record, and masks numbers in its rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.task_id = _task_id()
        ids = _message_ids.get()
        record.message_ids = ",".join(ids[:20]) + ("..." if len(ids) > 20 else "")
        rendered = mask_numbers(record.getMessage())
        record.msg, record.args = rendered, None
        return True


class MaskedTracebacks(logging.Formatter):
    """Tracebacks and stacks masked like messages: an exception's text may quote a number."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return mask_numbers(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return mask_numbers(super().formatStack(stack_info))


class MaskedJsonFormatter(JsonFormatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return mask_numbers(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return mask_numbers(str(super().formatStack(stack_info)))


class TextFormatter(MaskedTracebacks):
    """Celery's usual line, with the bound ids at its end."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        bound = [f"{name}={value}" for name in ("task_id", "message_ids") if (value := getattr(record, name, ""))]
        return f"{line} [{' '.join(bound)}]" if bound else line


def _task_id() -> str:
    try:
        from celery import current_task  # imported here: consumers log without Celery running
    except ImportError:  # pragma: no cover - celery is a dependency
        return ""
    request = getattr(current_task, "request", None) if current_task else None
    return str(getattr(request, "id", "") or "")


def configure_logging(*, log_format: str = "text", level: int | str = logging.INFO, logfile: str | None = None) -> None:
    """One handler on the root logger in the chosen format, to `logfile` or else stderr; replaces any
    handlers there."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(MaskedJsonFormatter("%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s "
                                           "%(task_id)s %(message_ids)s", rename_fields={"levelname": "level"}))
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
