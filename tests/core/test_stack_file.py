"""A running `make run` stack's settings reach a second shell in the project folder, below the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from core.settings import load_core_settings
from core.stack_file import CONNECTION_VARIABLES, STACK_FILE, read_stack_file, remove_stack_file, write_stack_file


def test_a_shell_in_the_folder_or_below_reads_the_stack(tmp_path, monkeypatch):
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0", "LIGHTSMS_SENDER": "Acme"})
    below = tmp_path / "examples" / "deeper"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    for name in (*CONNECTION_VARIABLES, "LIGHTSMS_SENDER"):
        monkeypatch.delenv(name, raising=False)
    settings = load_core_settings()
    assert settings.store_url == "redis://127.0.0.1:6390/0" and settings.lightsms_sender == "Acme"
    assert (tmp_path / STACK_FILE).stat().st_mode & 0o077 == 0  # the owner's only


def test_the_environment_wins_over_the_stack(tmp_path, monkeypatch):
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6391/0")
    assert load_core_settings().store_url == "redis://127.0.0.1:6391/0"


def test_a_shell_configured_for_its_own_stack_reads_none_of_the_file(tmp_path, monkeypatch):
    # A production REDIS_URL must not be paired with the running make run's simulator and sender.
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0", "LIGHTSMS_SENDER": "Simulated",
                                "LIGHTSMS_BASE_URL": "http://127.0.0.1:8765/external/get/"})  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIGHTSMS_SENDER", raising=False)
    monkeypatch.setenv("redis_url", "redis://prod-redis:6379/0")
    assert load_core_settings().lightsms_sender is None


def test_only_a_private_regular_file_of_a_live_stack_counts(tmp_path):
    path = write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    assert read_stack_file(tmp_path) == {"REDIS_URL": "redis://127.0.0.1:6390/0"}
    path.chmod(0o644)
    assert read_stack_file(tmp_path) == {}
    path.chmod(0o600)
    # The same PID with another start time is another process (a PID reused after a reboot).
    path.write_text(re.sub(r"LIGHTSMS_STACK_STARTED=\d+", "LIGHTSMS_STACK_STARTED=1", path.read_text()))
    assert read_stack_file(tmp_path) == {}
    elsewhere = tmp_path / "elsewhere"
    real = write_stack_file(elsewhere, {"REDIS_URL": "redis://evil:6379/0"})
    path.unlink()
    path.symlink_to(real)
    assert read_stack_file(tmp_path) == {}
    # Writing never follows a planted symlink either: the link is replaced, its target untouched.
    before = real.read_text()
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    assert real.read_text() == before and not path.is_symlink()


def test_a_stack_that_is_gone_is_ignored(tmp_path, monkeypatch):
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / STACK_FILE
    gone = f"LIGHTSMS_STACK_PID={dead.stdout.strip()}"
    path.write_text(path.read_text().replace(f"LIGHTSMS_STACK_PID={os.getpid()}", gone))
    assert read_stack_file(tmp_path) == {}
    remove_stack_file(tmp_path)
    assert not path.exists() and read_stack_file(tmp_path) == {}


def test_no_file_means_nothing(tmp_path):
    assert read_stack_file(tmp_path) == {}
