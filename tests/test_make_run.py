"""`make run` as a new user meets it: a second shell in the project folder reaches the running stack
with nothing set (not whatever Redis answers on 6379), Flower asks for a password, and Ctrl-C stops
every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from core.stack_file import STACK_FILE
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, pid_running, venv_executable

ROOT = Path(__file__).resolve().parent.parent
# A second shell: the user's PATH and HOME, none of our variables.
CLEAN_ENV = {name: value for name, value in os.environ.items()
             if not name.startswith(("LIGHTSMS_", "REDIS_", "CELERY_", "FLOWER_"))}  # fmt: skip


def _children(pid: int) -> set[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(p) for p in found}


def _cli(*args: str) -> str:
    return subprocess.run([venv_executable("lightsms-queue"), *args], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=30).stdout  # fmt: skip


def test_a_second_shell_reaches_the_stack_and_ctrl_c_stops_it_all():
    # Incoming polled every 2 s instead of 30, so the demo's STOP comes through quickly; the second
    # shell still has nothing set.
    stack = ManagedProcess([sys.executable, "-m", "scripts.run_stack"], name="make-run", cwd=ROOT,
                           env={**CLEAN_ENV, "LIGHTSMS_INCOMING_INTERVAL": "2"}, ready=r"Ctrl-C stops everything")
    stack.start()
    try:
        stack.wait_ready(timeout=60)
        children = _children(stack.pid or 0)
        assert len(children) >= 6  # redis, simulator, worker, beat, consumer, flower
        assert (ROOT / STACK_FILE).exists()
        flower = re.search(r"Flower (http://\S+)\s+user (\S+), password (\S+)", stack.output())
        assert flower, "make run does not print Flower's URL and password"
        url, user, password = flower.groups()
        assert requests.get(url + "api/workers", timeout=10).status_code == 401
        assert requests.get(url + "api/workers", auth=(user, password), timeout=10).status_code == 200

        script = venv_executable("lightsms-queue")
        sent = subprocess.run([script, "send", "37060000001", "Hello"], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                              text=True, timeout=30)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        message_id = sent.stdout.strip()

        def state() -> str | None:
            shown = subprocess.run([script, "status", message_id], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                                   text=True, timeout=30).stdout  # fmt: skip
            return shown if "SENT" in shown else None

        wait_until(state, timeout=30, interval=0.5)

        # make demo, from the second shell: traffic of every kind reaches the stack (whose Redis may hold
        # an earlier run's messages: the counters are compared with what they were).
        _cli("optout", "remove", "37062000001")
        before = json.loads(_cli("stats", "--json"))["counters"]
        demo = subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert demo.returncode == 0, demo.stderr

        def demo_done() -> dict[str, str] | None:
            shown = _cli("stats", "--json")
            counters = json.loads(shown)["counters"] if shown else {}
            failed, sent = (int(counters.get(name, 0)) - int(before.get(name, 0)) for name in ("failed:16", "sent"))
            return counters if failed == 1 and sent >= 56 else None  # 5 singles, 50 bulk, 1 after the 503s

        wait_until(demo_done, timeout=60, interval=1.0)
        # The demo's STOP went through the poller and the keyword consumer to the opt-out list.
        wait_until(lambda: "37062000001" in _cli("optout", "list", "--show-phones"), timeout=60, interval=1.0)
        assert "37062000001" not in _cli("optout", "list", "--json")
    finally:
        stack.send_signal(signal.SIGINT)  # Ctrl-C
        stack.wait_exit(timeout=90)
    assert not (ROOT / STACK_FILE).exists()
    assert not [pid for pid in children if pid_running(pid)], "make run left processes behind"

    # A second make run finds the first one's messages: Redis keeps its AOF in the project's .run folder.
    again = ManagedProcess([sys.executable, "-m", "scripts.run_stack"], name="make-run-again", cwd=ROOT,
                           env=CLEAN_ENV, ready=r"Ctrl-C stops everything")  # fmt: skip
    again.start()
    try:
        again.wait_ready(timeout=60)
        shown = subprocess.run([script, "status", message_id], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                               text=True, timeout=30)  # fmt: skip
        assert "SENT" in shown.stdout, shown.stdout + shown.stderr
    finally:
        again.send_signal(signal.SIGINT)
        again.wait_exit(timeout=90)
