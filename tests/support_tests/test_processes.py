"""ManagedProcess: readiness, logs, graceful and brutal stops, process groups."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.polling import wait_until
from tests.support.processes import ManagedProcess, ProcessExitedEarly, pid_running


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


# A child that announces itself and then waits to be stopped.
WAITS_FOR_SIGNAL = """
    import signal
    print("listening on port 4242")
    signal.pause()
"""


def test_regex_ready_returns_the_match() -> None:
    with ManagedProcess(python(WAITS_FOR_SIGNAL), name="regex-ready", ready=r"port (\d+)") as process:
        match = process.wait_ready(timeout=5)
        assert isinstance(match, re.Match)
        assert match.group(1) == "4242"
        assert process.alive
    assert not process.alive


def test_callable_ready(tmp_path: Path) -> None:
    flag = tmp_path / "ready.flag"
    code = f"""
        import pathlib, signal
        pathlib.Path({str(flag)!r}).write_text("ok")
        signal.pause()
    """
    with ManagedProcess(python(code), name="callable-ready", ready=flag.exists) as process:
        assert flag.read_text() == "ok"
        assert process.alive


def test_exit_before_ready_fails_fast_with_the_output() -> None:
    code = """
        import sys
        print("config error: no broker")
        sys.exit(3)
    """
    process = ManagedProcess(python(code), name="dies", ready=r"never printed").start()

    with pytest.raises(ProcessExitedEarly, match=r"exited with code 3[\s\S]*config error: no broker"):
        process.wait_ready(timeout=10)


def test_ready_timeout_names_the_process_and_shows_its_log() -> None:
    process = ManagedProcess(python(WAITS_FOR_SIGNAL), name="slowpoke", ready=r"never printed").start()
    try:
        with pytest.raises(AssertionError, match=r"slowpoke to become ready[\s\S]*listening on port 4242"):
            process.wait_ready(timeout=0.3)
    finally:
        process.kill9()


def test_kill9_kills_the_whole_process_group() -> None:
    # A shell with two background children, like a Celery worker with its pool processes.
    script = "sleep 60 & echo child $!; sleep 60 & echo child $!; echo ready; wait"
    process = ManagedProcess(["sh", "-c", script], name="group", ready=r"ready").start()
    process.wait_ready(timeout=5)
    children = [int(pid) for pid in re.findall(r"child (\d+)", process.output())]
    assert len(children) == 2 and all(pid_running(pid) for pid in children)

    process.kill9()

    assert not process.alive
    assert process.returncode == -9
    wait_until(lambda: not any(pid_running(pid) for pid in children), timeout=5, message="children gone")


def test_terminate_lets_the_process_shut_down_cleanly() -> None:
    code = """
        import signal, sys
        def bye(*_):
            print("shutting down cleanly")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("up")
        signal.pause()
    """
    process = ManagedProcess(python(code), name="graceful", ready=r"up").start()
    process.wait_ready(timeout=5)

    assert process.terminate(timeout=5) == 0
    assert "shutting down cleanly" in process.output()


def test_terminate_escalates_to_sigkill() -> None:
    code = """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up")
        signal.pause()
    """
    process = ManagedProcess(python(code), name="stubborn", ready=r"up").start()
    process.wait_ready(timeout=5)

    assert process.terminate(timeout=0.3) == -9
    assert not process.alive


def test_env_is_added_to_the_inherited_environment() -> None:
    code = """
        import os
        print(os.environ["EXTRA"], "PATH" in os.environ)
    """
    process = ManagedProcess(python(code), name="env", env={"EXTRA": "added"}).start()

    assert process.wait_exit(timeout=10) == 0
    assert "added True" in process.output()


def test_log_tail_and_output_of_a_restarted_process(tmp_path: Path) -> None:
    code = """
        import os
        for n in range(5):
            print("line", n, os.getpid())
    """
    process = ManagedProcess(python(code), name="tail", log_path=tmp_path / "tail.log").start()
    process.wait_exit(timeout=10)
    first_pid = process.pid

    process.start()
    process.wait_exit(timeout=10)

    assert process.log_tail(2).splitlines() == [f"line 3 {process.pid}", f"line 4 {process.pid}"]
    # output() covers the current run only; the log file keeps both.
    assert str(first_pid) not in process.output()
    assert str(first_pid) in (tmp_path / "tail.log").read_text()


def test_repr_leaves_out_the_command_line() -> None:
    process = ManagedProcess(["true", "--api-key", "s3cret"], name="quiet")

    assert "s3cret" not in repr(process)
