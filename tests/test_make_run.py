"""`make run` as a new user meets it: a second shell in the project folder reaches the running stack
with nothing set (not whatever Redis answers on 6379), Flower asks for a password, and Ctrl-C stops
every process it started."""

from __future__ import annotations

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


def test_a_second_shell_reaches_the_stack_and_ctrl_c_stops_it_all():
    stack = ManagedProcess([sys.executable, "-m", "scripts.run_stack"], name="make-run", cwd=ROOT, env=CLEAN_ENV,
                           ready=r"Ctrl-C stops everything")  # fmt: skip
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
