"""A running `make run` stack's settings reach a second shell in the project folder, below the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from core.settings import load_core_settings
from core.stack_file import STACK_FILE, read_stack_file, remove_stack_file, write_stack_file


def test_a_shell_in_the_folder_or_below_reads_the_stack(tmp_path, monkeypatch):
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0", "LIGHTSMS_SENDER": "Acme"})
    below = tmp_path / "examples" / "deeper"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("LIGHTSMS_SENDER", raising=False)
    settings = load_core_settings()
    assert settings.store_url == "redis://127.0.0.1:6390/0" and settings.lightsms_sender == "Acme"
    assert (tmp_path / STACK_FILE).stat().st_mode & 0o077 == 0  # the owner's only


def test_the_environment_wins_over_the_stack(tmp_path, monkeypatch):
    write_stack_file(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6391/0")
    assert load_core_settings().store_url == "redis://127.0.0.1:6391/0"


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
