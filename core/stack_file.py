"""The settings a running `make run` stack leaves for other shells in the project folder.

`make run` starts its own Redis (on 6380 when 6379 is taken) and the simulator on free ports; a
second shell with nothing set would otherwise enqueue into whatever Redis answers on 6379, where no
worker listens. So the stack writes `.run/stack.env` (REDIS_URL, the broker, the simulator's base
URL, the sender) and removes it on exit; the settings loader reads it, below the environment, from
the current folder or any folder above it. A file whose stack is gone (its `make run` was killed)
is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["STACK_FILE", "read_stack_file", "remove_stack_file", "write_stack_file"]

STACK_FILE = Path(".run") / "stack.env"
PID_KEY = "LIGHTSMS_STACK_PID"


def _find(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / STACK_FILE
        if candidate.is_file():
            return candidate
    return None


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def read_stack_file(start: Path | None = None) -> dict[str, str]:
    """The variables of the running stack's file (names upper-case), or {} when there is none."""
    try:
        path = _find(start or Path.cwd())
        lines = path.read_text(encoding="utf-8").splitlines() if path else []
    except OSError:
        return {}
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    if not _alive(values.pop(PID_KEY, "")):
        return {}
    return values


def write_stack_file(folder: Path, values: dict[str, str]) -> Path:
    """Write the stack's settings (readable by the owner only) with this process as the stack."""
    path = folder / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# written by `make run`, removed when it stops; the environment wins over it\n"
    body += "".join(f"{name}={value}\n" for name, value in {**values, PID_KEY: str(os.getpid())}.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(body)
    return path


def remove_stack_file(folder: Path) -> None:
    (folder / STACK_FILE).unlink(missing_ok=True)
