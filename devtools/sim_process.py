"""The LightSMS simulator as a separate process, and a small client of its admin API (/_sim/).

Running it out of process keeps tests honest: the client under test talks real HTTP on loopback,
and the simulator can be killed like any other remote service.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import requests

from devtools.processes import ManagedProcess, venv_executable

__all__ = ["SimAdmin", "SimProcess"]

LISTENING = re.compile(r"lightsms-sim listening on (http://\S+)")


def _sim_command() -> list[str]:
    script = venv_executable("lightsms-sim")
    if os.access(script, os.X_OK):
        return [script]
    # The console script appears once the editable install's metadata knows about it.
    return [sys.executable, "-m", "simulator"]


class SimProcess:
    """``lightsms-sim`` on a free port of 127.0.0.1. ``extra_args`` go to its CLI as they are,
    e.g. ``("--delivery-seconds", "0.2", "--balance", "5")``."""

    def __init__(
        self,
        *,
        login: str = "demo",
        api_key: str = "demo-key",
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.login = login
        self.api_key = api_key
        argv = [
            *_sim_command(),
            "--host", "127.0.0.1",
            "--port", "0",
            "--login", login,
            "--api-key", api_key,
            *extra_args,
        ]  # fmt: skip
        self.process = ManagedProcess(argv, name="lightsms-sim", ready=LISTENING, log_path=log_path)
        self._root: str | None = None

    def __repr__(self) -> str:
        return f"<SimProcess {self._root or '(not started)'} alive={self.alive}>"

    def start(self, *, timeout: float = 15.0) -> Self:
        self.process.start()
        try:
            match = self.process.wait_ready(timeout=timeout)
        except BaseException:
            self.process.kill9()
            raise
        assert isinstance(match, re.Match)
        self._root = match.group(1).rstrip("/")
        return self

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._root is None:
            raise RuntimeError("the simulator has not been started")
        return self._root

    @property
    def base_url(self) -> str:
        """What the LightSMS client is configured with: ``http://127.0.0.1:PORT/external/get/``."""
        return f"{self.root_url}/external/get/"

    @property
    def admin_url(self) -> str:
        return f"{self.root_url}/_sim/"

    @property
    def alive(self) -> bool:
        return self.process.alive

    def admin(self) -> SimAdmin:
        return SimAdmin(self.admin_url)

    def stop(self, *, timeout: float = 10.0) -> None:
        self.process.terminate(timeout=timeout)

    def kill(self) -> None:
        self.process.kill9()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimAdmin:
    """Client of the simulator's admin API. Every call raises on a non-2xx answer."""

    def __init__(self, admin_url: str, *, timeout: float = 10.0) -> None:
        self.admin_url = admin_url if admin_url.endswith("/") else admin_url + "/"
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # loopback only: no proxy from the environment

    def __repr__(self) -> str:
        return f"<SimAdmin {self.admin_url}>"

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def messages(self) -> list[dict[str, Any]]:
        """Every message the simulator accepted, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", "messages")["messages"]
        return result

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Requests the simulator received, optionally only those to ``endpoint`` ("send", "status", ...)."""
        entries: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        if endpoint is None:
            return entries
        return [entry for entry in entries if entry.get("endpoint") == endpoint]

    def faults(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the current faults (no arguments: just read them); return them all."""
        result: dict[str, Any] = self._call("POST", "faults", changes)["faults"]
        return result

    def incoming(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """Queue inbound SMS (dicts with sender, text, optional phone/prefix/date); return their ids."""
        ids: list[str] = self._call("POST", "incoming", {"messages": [dict(m) for m in messages]})["ids"]
        return ids

    def set_status(self, statuses: Mapping[str, str]) -> int:
        """Force delivery statuses by id_sms; return how many messages were updated."""
        updated: int = self._call("POST", "status", {"statuses": dict(statuses)})["updated"]
        return updated

    def reset(self) -> None:
        """Back to the start-up configuration: no messages, requests, incoming, stop list or faults."""
        self._call("POST", "reset", {})

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._session.request(method, self.admin_url + path, json=body, timeout=self.timeout)
        if not response.ok:
            raise AssertionError(
                f"simulator admin {method} /_sim/{path} answered {response.status_code}: {response.text[:500]}"
            )
        if not response.content:
            return {}
        data: dict[str, Any] = response.json()
        return data
