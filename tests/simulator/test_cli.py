"""The real `lightsms-sim` console script, as a subprocess on port 0."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.simulator.hand_client import HandClient

SCRIPT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "lightsms-sim"
LISTENING = re.compile(r"lightsms-sim listening on (http://127\.0\.0\.1:\d+)\n")


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or fail after `timeout` (readline alone could block forever)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no listening line within {timeout}s") from None


@pytest.fixture
def cli_sim() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    argv = [
        str(SCRIPT), "--host", "127.0.0.1", "--port", "0", "--login", "acme", "--api-key", "s3cret-key",
        "--balance", "5", "--price", "0.05", "--sender", "Acme", "--sender", "Later:pending",
        "--delivery-seconds", "0.2", "--verbose",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first_line(process, timeout=15)
        match = LISTENING.fullmatch(line)
        assert match, line
        yield match.group(1), process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


def test_console_script_serves_the_api(cli_sim: tuple[str, subprocess.Popen[str]]) -> None:
    root, process = cli_sim
    api = HandClient(root + "/external/get/", login="acme", api_key="s3cret-key")
    assert api.json("balance") == {"money": "5.0000", "currency": "EUR"}
    assert api.json("senders") == {"LightSMS": "completed", "Pending": "pending", "Acme": "completed",
                                   "Later": "pending"}
    reply = api.send("37061234567", "Hi", sender="Acme")
    assert reply["37061234567"]["cost"] == "0.0500"
    assert api.call("balance", api_key="demo-key").json() == {"error": "6"}
    assert requests.get(root + "/_sim/health", timeout=5).json() == {"ok": True}

    process.terminate()
    assert process.wait(timeout=10) == 0
    _, stderr = process.communicate(timeout=5)
    assert "send -> accepted" in stderr  # --verbose logs each request ...
    assert "s3cret-key" not in stderr  # ... but never the key,
    assert "37061234567" not in stderr and "signature" not in stderr  # the phone or the query


def test_port_in_use_fails_with_one_line(cli_sim: tuple[str, subprocess.Popen[str]]) -> None:
    root, _ = cli_sim
    port = root.rsplit(":", 1)[1]
    done = subprocess.run([str(SCRIPT), "--port", port], capture_output=True, text=True, timeout=15)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("lightsms-sim: cannot start:")


def test_the_simulator_process_keeps_its_heap_out_of_full_collections_after_each_reset() -> None:
    """A full collection stops every handler thread: requests arriving meanwhile are stamped late."""
    import gc

    from simulator.cli import _freeze_the_heap
    from simulator.config import SimConfig
    from simulator.state import SimState

    state = SimState(SimConfig())
    resets: list[int] = []
    try:
        state.on_reset = lambda: (_freeze_the_heap(), resets.append(gc.get_freeze_count()))
        state.reset()
        assert resets and resets[0] > 0  # what was there at the reset is frozen
    finally:
        gc.unfreeze()
