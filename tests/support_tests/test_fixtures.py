"""The shared fixtures in tests/conftest.py and its failure hook."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.support_tests.test_sim_process import send_one

REPO = Path(__file__).resolve().parents[2]


def test_redis_client_flushes_every_database(redis_server: RedisServer, request: pytest.FixtureRequest) -> None:
    redis_server.client().set("left-over", 1)
    redis_server.client(db=3).set("left-over", 1)

    client = request.getfixturevalue("redis_client")

    assert client.dbsize() == 0
    assert redis_server.client(db=3).dbsize() == 0


def test_redis_client_brings_back_a_killed_shared_server(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    url = redis_server.url
    redis_server.kill()

    client = request.getfixturevalue("redis_client")

    assert client.ping()
    assert redis_server.url == url


def test_sim_admin_resets_the_shared_simulator(sim_process: SimProcess, request: pytest.FixtureRequest) -> None:
    send_one(sim_process)

    admin = request.getfixturevalue("sim_admin")

    assert admin.messages() == []


def test_a_failing_test_shows_the_log_tail_of_its_processes(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fails.py").write_text(
        textwrap.dedent(
            """
            import sys
            from tests.support.processes import ManagedProcess

            def test_fails():
                argv = [sys.executable, "-c", "print('the-child-said-this')"]
                process = ManagedProcess(argv, name="chatty").start()
                process.wait_exit(timeout=10)
                assert False, "deliberate"

            def test_quiet_failure():
                assert False, "no processes here"
            """
        )
    )
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(
        [*command, "--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed" in result.stdout
    sections = result.stdout.split("_ test_quiet_failure _")
    assert "chatty (pid" in sections[0] and "the-child-said-this" in sections[0]
    assert "chatty (pid" not in sections[1]
