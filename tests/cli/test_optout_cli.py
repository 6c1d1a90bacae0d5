"""`lightsms-queue optout list|add|remove|check` against a real Redis, through cli.main and once
through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main as cli
from core import keys

A, B = "37061234567", "37061234568"


@pytest.fixture
def env(redis_server, redis_client, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("LIGHTSMS_DEFAULT_REGION", raising=False)
    return {"REDIS_URL": redis_server.url}


def test_add_then_list_masked_and_in_full(env, redis_client, capsys):
    assert cli.main(["optout", "add", "+370 612 34567", "0037061234568", A]) == 0
    assert "opted out: 2 (already listed: 0)" in capsys.readouterr().out
    assert redis_client.smembers(keys.OPT_OUT) == {A, B}

    assert cli.main(["optout", "list"]) == 0
    out = capsys.readouterr().out
    assert out.split() == ["370*****567", "370*****568"] and A not in out

    assert cli.main(["optout", "list", "--json", "--show-phones"]) == 0
    assert json.loads(capsys.readouterr().out) == [A, B]


def test_check_says_which_are_opted_out(env, redis_client, capsys):
    redis_client.sadd(keys.OPT_OUT, A)
    assert cli.main(["optout", "check", A, B]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["370*****567  opted out", "370*****568  not opted out"]
    assert cli.main(["optout", "check", A, B, "--json", "--show-phones"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"phone": A, "opted_out": True}, {"phone": B, "opted_out": False}]


def test_remove_takes_numbers_off_and_notes_lightsms_own_list(env, redis_client, capsys):
    redis_client.sadd(keys.OPT_OUT, A, B)
    assert cli.main(["optout", "remove", A]) == 0
    captured = capsys.readouterr()
    assert "opted in again: 1 (not listed: 0)" in captured.out
    assert "LightSMS panel" in captured.err
    assert redis_client.smembers(keys.OPT_OUT) == {B}


def test_national_numbers_read_with_the_default_region(env, redis_client, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTSMS_DEFAULT_REGION", "LT")
    assert cli.main(["optout", "add", "861234567"]) == 0
    assert redis_client.smembers(keys.OPT_OUT) == {A}


@pytest.mark.parametrize("bad", ["12", "abc", "+1 555"])
def test_a_bad_phone_exits_2_naming_it_and_changes_nothing(env, redis_client, capsys, bad):
    assert cli.main(["optout", "add", A, bad]) == 2
    err = capsys.readouterr().err
    assert "PHONE 2" in err
    assert redis_client.exists(keys.OPT_OUT) == 0


def test_no_phone_is_a_usage_error(env, capsys):
    assert cli.main(["optout", "add"]) == 2


def test_an_unreachable_redis_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    assert cli.main(["optout", "list"]) == 1
    assert "cannot reach Redis" in capsys.readouterr().err


def test_the_installed_console_script(env, redis_client):
    script = Path(sys.executable).with_name("lightsms-queue")
    child_env = {**os.environ, **env}
    child_env.pop("LIGHTSMS_DEFAULT_REGION", None)
    added = subprocess.run([str(script), "optout", "add", A], env=child_env, capture_output=True, text=True,
                           timeout=60, check=False)  # fmt: skip
    assert added.returncode == 0, added.stderr
    checked = subprocess.run([str(script), "optout", "check", "--json", A, B], env=child_env, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert [row["opted_out"] for row in json.loads(checked.stdout)] == [True, False]
    bad = subprocess.run([str(script), "optout", "check", "nope"], env=child_env, capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2 and "PHONE 1" in bad.stderr
