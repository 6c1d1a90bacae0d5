"""`lightsms-queue send | status | cancel | send-bulk | balance | senders` as a user runs them."""

from __future__ import annotations

import json
import subprocess

import pytest

from cli.main import main
from core import keys
from devtools.processes import venv_executable


@pytest.fixture
def shell(redis_server, redis_client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    return redis_client


def test_send_then_status_then_cancel(shell, capsys):
    assert main(["send", "+370 600 00001", "Hello"]) == 0
    message_id = capsys.readouterr().out.strip()
    assert main(["status", message_id, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "QUEUED" and row["phone"] == "370*****001"
    assert main(["cancel", message_id]) == 0 and "cancelled: 1" in capsys.readouterr().out
    assert main(["status", message_id]) == 0 and "CANCELLED" in capsys.readouterr().out
    assert main(["cancel", message_id]) == 1  # too late now
    assert main(["status", "no-such-id"]) == 1


def test_a_bad_phone_or_time_is_a_usage_error_naming_it(shell, capsys):
    assert main(["send", "12", "Hello"]) == 2
    assert "phone:" in capsys.readouterr().err
    assert main(["send", "37060000001", "Hello", "--at", "tomorrow"]) == 2
    assert shell.keys(keys.MESSAGE_PREFIX + "*") == []


def test_send_bulk_dry_run_reports_bad_rows_by_line_and_stores_nothing(shell, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text('phone,text\n37060000001,Hi\n12345,Hi\n37060000002\n37060000003,"Hi, there",x\n')
    assert main(["send-bulk", str(rows), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "line 3: phone" in captured.err and "line 4: text" in captured.err and "line 5: row" in captured.err
    assert "dry run, nothing stored" in captured.out and "1 valid" in captured.out
    assert shell.keys(keys.MESSAGE_PREFIX + "*") == []


def test_send_bulk_stores_the_good_rows_and_a_repeat_with_its_key_sends_nothing_twice(shell, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"3706000{i:04d}\n" for i in range(30)) + "37060000005\n")
    assert main(["send-bulk", str(rows), "--text", "Sale", "--key", "campaign-1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["counts"] == {"invalid": 0, "duplicate": 1, "stored": 30}
    assert main(["send-bulk", str(rows), "--text", "Sale", "--key", "campaign-1"]) == 0
    assert len(shell.keys(keys.MESSAGE_PREFIX + "*")) == 30


def test_the_console_script_works_and_a_dead_redis_is_one_line(redis_server, redis_client, sim_process, sim_admin):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_server.url, "LIGHTSMS_SENDER": "LightSMS",
           "LIGHTSMS_BASE_URL": sim_process.base_url}  # fmt: skip
    script = venv_executable("lightsms-queue")
    sent = subprocess.run([script, "send", "37060000001", "Hello"], env=env, capture_output=True, text=True)
    assert sent.returncode == 0 and len(sent.stdout.strip()) == 32
    money = subprocess.run([script, "balance", "--json"], env=env, capture_output=True, text=True)
    assert money.returncode == 0 and json.loads(money.stdout)["currency"] == "EUR"
    names = subprocess.run([script, "senders"], env=env, capture_output=True, text=True)
    assert names.returncode == 0 and "LightSMS" in names.stdout
    down = {**env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    failed = subprocess.run([script, "status", "abc"], env=down, capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert "cannot reach Redis" in failed.stderr


def test_send_bulk_with_a_key_keeps_two_texts_to_one_number_apart(shell, tmp_path, capsys):
    rows = tmp_path / "two.csv"
    rows.write_text("37061234567,hello\n37061234567,bye\n+370 612 34568,hello\n")
    assert main(["send-bulk", str(rows), "--key", "K1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["stored"] == 3
    texts = sorted(shell.hget(key, "text") for key in shell.keys(keys.MESSAGE_PREFIX + "*"))
    assert texts == ["bye", "hello", "hello"]
    assert main(["send-bulk", str(rows), "--key", "K1"]) == 0  # again: nothing new
    assert len(shell.keys(keys.MESSAGE_PREFIX + "*")) == 3


def test_send_bulk_with_a_file_it_cannot_read_is_one_line(shell, tmp_path, capsys):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("37061234567,caf\xe9 ol\xe9\n".encode("latin-1"))
    assert main(["send-bulk", str(latin)]) == 2
    assert "not a UTF-8 CSV" in capsys.readouterr().err
    huge = tmp_path / "huge.csv"
    huge.write_text("37061234567," + "x" * 200_000 + "\n")
    assert main(["send-bulk", str(huge)]) == 2
    assert shell.keys(keys.MESSAGE_PREFIX + "*") == []


def test_settling_ids_that_are_not_there_fails(shell, capsys):
    assert main(["unknown", "sent", "no-such-id"]) == 1
    assert main(["dead", "retry", "no-such-id"]) == 1
    assert main(["dead", "purge", "no-such-id"]) == 1
    assert "no-such-id" in capsys.readouterr().err


def test_consume_keywords_without_credentials_is_a_configuration_error(shell, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "https://www.lightsms.com/external/get/")
    for name in ("LIGHTSMS_LOGIN", "LIGHTSMS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["consume", "--keywords"]) == 2
    assert "configuration error: LIGHTSMS_LOGIN" in capsys.readouterr().err
