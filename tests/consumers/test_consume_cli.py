"""`lightsms-queue consume` and `dead-events`: usage errors, an unreachable broker, masked output."""

from __future__ import annotations

import json

import pytest

from cli import main as cli
from devtools.ports import free_port
from tests.consumers.test_dead_letters import _dead


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["consume"], "name a handler"),
        (["consume", "no_colon"], "module:function"),
        (["consume", "tests.consumers.no_such_module:f"], "cannot import"),
        (["consume", "tests.consumers.handlers:missing"], "has no 'missing'"),
        (["consume", "tests.consumers.handlers:NOT_CALLABLE"], "is not callable"),
        (["consume", "tests.consumers.handlers:record", "--max-retries", "-1"], "-1"),
    ],
)
def test_consume_usage_errors_exit_2(args, says, capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # never reached
    assert cli.main(args) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("args", [["dead-events", "list"], ["consume", "tests.consumers.handlers:record"]])
def test_an_unreachable_redis_is_one_line_and_exit_1(args, capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("lightsms-queue: cannot reach the broker or Redis") and err.count("\n") == 1


def test_dead_events_list_masks_phones_unless_asked(settings, publish, capsys):
    _dead(publish, 2)
    assert cli.main(["dead-events", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "in-0" in out and "RuntimeError: 0" in out and "retries=3" in out
    assert "37061000000" not in out and "5163251632" not in out
    assert cli.main(["dead-events", "list", "--json", "--show-phones"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["event"]["sender"] for r in records] == ["37061000000", "37061000001"]
    assert cli.main(["dead-events", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["event"]["sender"] == "370*****000"


def test_dead_events_requeue_and_purge(settings, publish, redis_client, capsys):
    _dead(publish, 2)
    _dead(publish, 3, queue="sms.status")
    assert cli.main(["dead-events", "requeue"]) == 0
    assert "requeued onto sms.inbound: 2" in capsys.readouterr().out
    assert redis_client.llen("sms.inbound") == 2
    assert cli.main(["dead-events", "purge", "--queue", "sms.status"]) == 0
    assert "purged from sms.status.dead: 3" in capsys.readouterr().out


def test_the_router_alone_on_another_queue_is_refused(monkeypatch, redis_server, capsys):
    from cli.main import main

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    assert main(["consume", "--keywords", "--queue", "sms.status"]) == 2
    assert "name a handler for sms.status" in capsys.readouterr().err
