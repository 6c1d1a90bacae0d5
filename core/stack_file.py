"""The settings a running `make run` stack leaves for other shells in the project folder.

`make run` starts its own Redis (on 6380 when 6379 is taken) and the simulator on free ports; a
second shell with nothing set would otherwise enqueue into whatever Redis answers on 6379, where no
worker listens. So the stack writes `.run/stack.env` (REDIS_URL, the broker, the simulator's base
URL, the sender) and removes it on exit; the settings loader reads it, below the environment, from
the current folder or any folder above it, and only when the shell sets none of the connection
variables itself (the file is taken whole or not at all). A file whose stack is gone (its `make
run` was killed), a symlink, or one another user could have written is ignored.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["CONNECTION_VARIABLES", "STACK_FILE", "read_stack_file", "remove_stack_file", "write_stack_file"]

STACK_FILE = Path(".run") / "stack.env"
PID_KEY = "LIGHTSMS_STACK_PID"
STARTED_KEY = "LIGHTSMS_STACK_STARTED"
# Set in the environment, any of these means the shell is configured for some stack of its own: the
# file is then not read at all (mixing would pair, say, a production REDIS_URL with our simulator).
CONNECTION_VARIABLES = frozenset({"REDIS_URL", "CELERY_BROKER_URL", "REDIS_SENTINELS", "LIGHTSMS_BASE_URL",
                                  "LIGHTSMS_LOGIN", "LIGHTSMS_API_KEY"})  # fmt: skip


def _find(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / STACK_FILE
        if candidate.is_file():
            return candidate
    return None


def _started(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/<pid>/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after the name; the name may hold spaces


def _alive(pid: str, started: str) -> bool:
    """The stack's process still runs: the same PID and the same start time (a PID reused after a
    reboot or a kill is another process). Without /proc, a process of ours with that PID."""
    if not pid.isdigit():
        return False
    if Path("/proc/self/stat").exists():
        return _started(int(pid)) == started
    try:
        os.kill(int(pid), 0)
    except OSError:  # gone, or another user's: not our stack
        return False
    return True


def read_stack_file(start: Path | None = None) -> dict[str, str]:
    """The variables of the running stack's file (names upper-case), or {} when there is none.

    Only a regular file of ours that nobody else can read or write counts (not a symlink: whoever
    could plant one could point our processes at their Redis)."""
    path = _find(start or Path.cwd())
    if path is None:
        return {}
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(descriptor, encoding="utf-8") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return {}
        try:
            lines = file.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return {}
    values = {name.strip(): value.strip() for name, _, value in (line.partition("=") for line in lines)
              if name.strip() and not name.startswith("#")}  # fmt: skip
    if not _alive(values.pop(PID_KEY, ""), values.pop(STARTED_KEY, "")):
        return {}
    return values


def write_stack_file(folder: Path, values: dict[str, str]) -> Path:
    """Write the stack's settings (readable by the owner only) with this process as the stack: a new
    file put in place by rename, so no symlink or older file's mode is ever written through."""
    path = folder / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    stack = {**values, PID_KEY: str(pid), STARTED_KEY: _started(pid) or ""}
    body = "# written by `make run`, removed when it stops; the environment wins over it\n"
    body += "".join(f"{name}={value}\n" for name, value in stack.items())
    temporary = path.with_name(f".{path.name}.{pid}")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(body)
    os.replace(temporary, path)
    return path


def remove_stack_file(folder: Path) -> None:
    (folder / STACK_FILE).unlink(missing_ok=True)
