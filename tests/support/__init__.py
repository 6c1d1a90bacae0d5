"""Shared test infrastructure: real Redis servers, managed child processes, the simulator, polling.
It lives in devtools/ (the benchmarks use it too); these are its names as the tests know them.

Names are imported lazily, so a test that only needs ``wait_until`` does not pay for importing
redis and requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.polling import wait_until
    from devtools.ports import free_port
    from devtools.processes import (
        ManagedProcess,
        ProcessExitedEarly,
        live_processes,
        pid_running,
        venv_executable,
    )
    from devtools.redis_server import RedisServer, find_redis_server
    from devtools.sim_process import SimAdmin, SimProcess

__all__ = [
    "ManagedProcess",
    "ProcessExitedEarly",
    "RedisServer",
    "SimAdmin",
    "SimProcess",
    "find_redis_server",
    "free_port",
    "live_processes",
    "pid_running",
    "venv_executable",
    "wait_until",
]

_HOME = {
    "wait_until": "polling",
    "free_port": "ports",
    "ManagedProcess": "processes",
    "ProcessExitedEarly": "processes",
    "live_processes": "processes",
    "pid_running": "processes",
    "venv_executable": "processes",
    "RedisServer": "redis_server",
    "find_redis_server": "redis_server",
    "SimAdmin": "sim_process",
    "SimProcess": "sim_process",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"devtools.{_HOME[name]}"), name)
    globals()[name] = value
    return value
