"""RabbitMQ for the tests that are about it: skipped (never passed) when none answers on 127.0.0.1:5672,
and a vhost of the test's own, deleted afterwards, so nothing touches the machine's other vhosts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["own_vhost", "rabbitmqctl", "requires_rabbitmq"]


def _rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return shutil.which("rabbitmqctl") is not None
    except OSError:
        return False


requires_rabbitmq = pytest.mark.skipif(not _rabbitmq_answers(), reason="no RabbitMQ on 127.0.0.1:5672")


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def own_vhost(prefix: str) -> Iterator[str]:
    """A new vhost that guest may use; its name. Deleted on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)
