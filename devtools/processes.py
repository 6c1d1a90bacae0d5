"""Child processes for integration tests: simulator, Redis, Celery workers and beat.

Each process runs in its own process group (so a Celery worker and its pool children can be
killed together, like a machine losing power), writes stdout+stderr to a log file whose tail is
shown when a test fails, and is killed at interpreter exit if a test forgot to stop it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools.polling import wait_until

__all__ = [
    "ManagedProcess",
    "ProcessExitedEarly",
    "ReadyCheck",
    "live_processes",
    "pid_running",
    "venv_executable",
]

# A readiness check: a callable returning something truthy once ready, or a regex searched in the output.
ReadyCheck = Callable[[], object] | str | re.Pattern[str]

_registry: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_log_dir: Path | None = None


class ProcessExitedEarly(AssertionError):
    """The process exited while we were waiting for it to become ready."""

    def __init__(self, message: str, *, output: str) -> None:
        super().__init__(message)
        self.output = output


def venv_executable(name: str) -> str:
    """Path of a console script (``celery``, ``lightsms-sim``) installed next to this Python."""
    return str(Path(sys.executable).parent / name)


def pid_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an unreaped corpse is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def live_processes() -> list[ManagedProcess]:
    """Every ManagedProcess created in this interpreter that has not been garbage-collected."""
    return sorted(_registry, key=lambda p: p.started_at or 0.0)


class ManagedProcess:
    """One child process with its own process group and log file.

    ``env`` entries are added to (not substituted for) the current environment; PYTHONUNBUFFERED
    is set so Python children's output reaches the log as it happens. ``ready`` is a callable
    (ready once it returns something truthy) or a regex searched in the output.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready: ReadyCheck | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name
        self.env = dict(env or {})
        self.cwd = cwd
        self.ready = ready
        if log_path is None:
            fd, generated = tempfile.mkstemp(prefix=f"{_safe(name)}-", suffix=".log", dir=_run_log_dir())
            os.close(fd)
            log_path = generated
        self.log_path = Path(log_path)
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the current run's output starts in the (appended) log
        _registry.add(self)

    def __repr__(self) -> str:
        # argv and env stay out: they may carry credentials.
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive} log={self.log_path}>"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._popen is not None and self._popen.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- {self.name}: starting {Path(self.argv[0]).name}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.ended_at = None
        return self

    def wait_ready(self, timeout: float = 15.0) -> object:
        """Wait for the ready check; return its value (the regex match for a pattern).

        Fails at once, with the log tail, if the process exits first.
        """
        check = self._ready_predicate()

        def ready_or_dead() -> object:
            value = check()
            if value:
                return value
            if not self.alive:
                raise ProcessExitedEarly(
                    f"{self.name} exited with code {self.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}",
                    output=self.output(),
                )
            return None

        try:
            return wait_until(ready_or_dead, timeout=timeout, message=f"{self.name} to become ready")
        except ProcessExitedEarly:
            raise
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlog {self.log_path}:\n{self.log_tail()}") from None

    def wait_output(self, pattern: str | re.Pattern[str], *, timeout: float) -> re.Match[str]:
        """Wait until ``pattern`` appears in the output and return the match."""
        regex = re.compile(pattern)
        return wait_until(
            lambda: regex.search(self.output()),
            timeout=timeout,
            message=f"{regex.pattern!r} in the output of {self.name} (log {self.log_path})",
        )

    def send_signal(self, sig: int, *, group: bool = False) -> None:
        """Send ``sig`` to the process, or to its whole process group; no-op once it is gone."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self._popen.pid, sig)
            elif self._popen.poll() is None:
                self._popen.send_signal(sig)

    def kill9(self) -> None:
        """SIGKILL the whole process group at once (children included) and reap the leader."""
        if self._popen is None:
            return
        self.send_signal(signal.SIGKILL, group=True)
        self._reap(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the leader and let it shut down its children; SIGKILL the group after ``timeout``.

        Returns the exit code (negative for a signal, as subprocess reports it).
        """
        if self._popen is None:
            return None
        self.send_signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL, group=True)
        self._reap(timeout=10)
        # Stragglers the leader left behind (orphaned pool children) must not outlive the test.
        self.send_signal(signal.SIGKILL, group=True)
        return self.returncode

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit on its own; return its exit code."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        try:
            code = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout:g}s; log {self.log_path}:\n{self.log_tail()}"
            ) from None
        self._mark_ended()
        return code

    def _reap(self, *, timeout: float) -> None:
        assert self._popen is not None
        self._popen.wait(timeout=timeout)
        self._mark_ended()

    def _mark_ended(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.monotonic()

    # -- state ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def alive(self) -> bool:
        if self._popen is None:
            return False
        if self._popen.poll() is None:
            return True
        self._mark_ended()
        return False

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def output(self) -> str:
        """Everything the current run has written so far (earlier runs of a restarted process excluded)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the log (reads at most the last 64 KiB)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 65536))
                data = log.read()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(data.decode(errors="replace").splitlines()[-n:])

    def active_since(self, moment: float) -> bool:
        """Whether the process was running at any time since ``moment`` (a time.monotonic value)."""
        if self.started_at is None:
            return False
        return self.alive or (self.ended_at is not None and self.ended_at >= moment)

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._popen is None:
            self.start()
        if self.ready is not None:
            try:
                self.wait_ready()
            except BaseException:
                self.kill9()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate(timeout=5)

    def _ready_predicate(self) -> Callable[[], object]:
        ready = self.ready
        if ready is None:
            return lambda: self.alive
        if callable(ready):
            return ready
        regex = re.compile(ready)
        return lambda: regex.search(self.output())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "process"


def _run_log_dir() -> Path:
    """One directory per test run for logs of processes that were not given a log path."""
    global _log_dir
    if _log_dir is None:
        _log_dir = Path(tempfile.mkdtemp(prefix="lightsms-test-logs-"))
    return _log_dir


@atexit.register
def _clean_up_at_exit() -> None:
    # A test run interrupted halfway must not leave Redis servers or workers running.
    for process in list(_registry):
        if process.alive:
            process.kill9()
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)
