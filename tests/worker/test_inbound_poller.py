"""IncomingPoller in process, against a real Redis and the simulator over HTTP; events are read back
with plain kombu (`Connection(url).SimpleQueue("sms.inbound")`), as a service without this package
would consume them."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from cli import main as cli
from core import keys
from core.events import EventPublisher, broker_connection
from worker.inbound import IncomingPoller

from .inbound_support import drain, local, make_poller, poller_settings

SENDER, OURS = "37061234567", "5163251632"


@pytest.fixture
def env(redis_server, redis_client, sim_admin, sim_process):
    settings = poller_settings(redis_server.url, sim_process.base_url)
    return settings, redis_client, sim_admin


def inject(admin, *texts: str, at: float | None = None, sender: str = SENDER) -> list[str]:
    extra = {} if at is None else {"date": local(at)}
    return admin.incoming([{"sender": sender, "phone": OURS, "prefix": "51632", "text": t, **extra} for t in texts])


def incoming_requests(admin) -> int:
    return len(admin.requests("incoming"))


def test_first_poll_reads_back_the_backfill_and_publishes_plain_kombu_events(env):
    settings, redis_client, admin = env
    now = time.time()
    [old] = inject(admin, "too old", at=now - settings.lightsms_incoming_backfill - 600)
    [recent] = inject(admin, "STOP", at=now - 1800)
    [fresh] = inject(admin, "HELP")
    poller = make_poller(settings)
    assert poller.poll() == {"published": 2}
    events = drain(settings.broker_url)
    assert [e["id"] for e in events] == [recent, fresh]
    first = events[0]
    assert first == {"schema": 1, "id": recent, "received_at": first["received_at"], "sender": SENDER,
                     "phone": OURS, "prefix": "51632", "text": "STOP"}  # fmt: skip
    assert first["received_at"].startswith(local(now - 1800).replace(" ", "T"))
    assert first["received_at"][-6:] in ("+02:00", "+03:00")
    cursor = float(redis_client.get(keys.INBOUND_CURSOR))
    assert abs(cursor - time.time()) < 5
    assert float(redis_client.hget(keys.POLLER_HEALTH, "incoming_ok_at")) == pytest.approx(time.time(), abs=5)
    assert redis_client.ttl(keys.inbound_seen(recent)) > 47 * 3600
    assert old not in [e["id"] for e in events]


def test_overlap_is_read_again_and_publishes_nothing_twice(env):
    settings, _, admin = env
    poller = make_poller(settings)
    first = inject(admin, "one", "two")
    assert poller.poll() == {"published": 2}
    third = inject(admin, "three")
    # The first two are inside the overlap: listed again, not published again.
    assert poller.poll() == {"published": 1, "duplicates": 2}
    assert poller.poll() == {"duplicates": 3}
    assert [e["id"] for e in drain(settings.broker_url)] == [*first, *third]


FAULTS: list[dict[str, Any]] = [
    {"http_503_rate": 1},
    {"reply_body": '{"error": "30"}'},
    {"reply_body": "<html><body>Service temporarily unavailable</body></html>", "reply_content_type": "text/html"},
    {"reply_body": '{"5": {"date": "2026-01-01 00:00:00"', "reply_content_type": "application/json"},
]


@pytest.mark.parametrize("fault", FAULTS, ids=["503", "error-30", "html", "truncated-json"])
def test_a_provider_error_mid_window_leaves_the_cursor_and_the_next_poll_gets_everything(env, fault, caplog):
    settings, redis_client, admin = env
    poller = make_poller(settings)
    before = inject(admin, "before")
    assert poller.poll() == {"published": 1}
    cursor = redis_client.get(keys.INBOUND_CURSOR)
    during = inject(admin, "during")
    admin.faults(endpoints=["incoming"], count=1, **fault)
    with caplog.at_level(logging.WARNING, logger="lightsms_queue.inbound"):
        assert poller.poll() == {"errors": 1}
    assert redis_client.get(keys.INBOUND_CURSOR) == cursor
    assert "incoming.php failed" in caplog.text and SENDER not in caplog.text
    after = inject(admin, "after")
    assert poller.poll() == {"published": 2, "duplicates": 1}
    assert [e["id"] for e in drain(settings.broker_url)] == [*before, *during, *after]


def malformed_json(now: float) -> str:
    good = {"date": local(now), "sender": SENDER, "phone": OURS, "prefix": "51632"}
    return json.dumps({
        "9001": {**good, "text": "good one"},
        "9002": {"sender": "37061234568", "phone": OURS, "text": "no date"},
        "9003": {**good, "date": "yesterday", "text": "bad date"},
        "9004": "junk",
        "9005": {**good, "sender": "", "text": "empty sender"},
        "9006": {**good, "text": None},
        "9007": {**good, "text": "good two"},
    })  # fmt: skip


def malformed_xml(now: float) -> str:
    good = f'date="{local(now)}" sender="{SENDER}" phone="{OURS}" prefix="51632"'
    return (
        "<response>"
        f'<sms id_sms="9001" {good} text="good one"/>'
        f'<sms id_sms="9002" sender="37061234568" phone="{OURS}" text="no date"/>'
        f'<sms id_sms="9003" date="2026-13-45 99:00:00" sender="{SENDER}" text="bad date"/>'
        f'<sms {good} text="no id"/>'
        f'<sms id_sms="9005" date="{local(now)}" text="no sender"/>'
        f'<sms id_sms="9006" {good}/>'
        f'<sms id_sms="9007" {good} text="good two"/>'
        "</response>"
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_malformed_items_are_set_aside_and_the_others_published(env, fmt, caplog, monkeypatch, capsys):
    settings, redis_client, admin = env
    poller = make_poller(settings, response_format=fmt)
    now = time.time()
    body, kind = (malformed_json(now), "application/json") if fmt == "json" else (malformed_xml(now), "text/xml")
    admin.faults(endpoints=["incoming"], count=2, reply_body=body, reply_content_type=kind)
    with caplog.at_level(logging.INFO, logger="lightsms_queue.inbound"):
        assert poller.poll() == {"published": 2, "rejected": 5}
    assert [e["text"] for e in drain(settings.broker_url)] == ["good one", "good two"]
    rejected = [json.loads(r) for r in redis_client.lrange(keys.INBOUND_REJECTED, 0, -1)]
    reasons = {r["id"]: r["reason"] for r in rejected}
    expected = {"9002": "missing date", "9003": "unreadable date", "9005": "missing sender", "9006": "missing text"}
    expected.update({"9004": "not a record"} if fmt == "json" else {"": "no id"})
    assert reasons == expected
    assert next(r for r in rejected if r["id"] == "9002")["fields"]["sender"] == "37061234568"
    # Logged by id; never a text, never a phone number in clear.
    for sms_id in (i for i in expected if i):
        assert f"incoming SMS {sms_id}" in caplog.text
    for secret in ("good one", "no date", SENDER, "37061234568", OURS):
        assert secret not in caplog.text
    # The same reply again (the overlap): nothing published or set aside twice.
    assert poller.poll() == {"duplicates": 7}
    assert redis_client.llen(keys.INBOUND_REJECTED) == 5

    monkeypatch.setenv("REDIS_URL", settings.store_url)
    assert cli.main(["inbound", "rejected"]) == 0
    out = capsys.readouterr().out
    assert "9003" in out and "unreadable date" in out and "370*****568" in out
    assert "37061234568" not in out and OURS not in out
    assert cli.main(["inbound", "rejected", "--show-phones", "--json", "--limit", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown) == 2 and all(r["fields"]["sender"] in (SENDER, None, "") for r in shown)


class FailingPublisher(EventPublisher):
    """Publishes `ok` events, then the broker refuses."""

    def __init__(self, settings, ok: int) -> None:
        super().__init__(broker_connection(settings))
        self.ok = ok

    def publish(self, queue, event, *, headers=None) -> None:
        if self.ok <= 0:
            raise OperationalError("broker unreachable")
        self.ok -= 1
        super().publish(queue, event, headers=headers)


def test_a_broker_that_refuses_a_publish_leaves_the_cursor(env):
    settings, redis_client, admin = env
    redis_client.set(keys.INBOUND_CURSOR, repr(time.time() - 60))
    cursor = redis_client.get(keys.INBOUND_CURSOR)
    ids = inject(admin, "a", "b", "c", "d")
    failing = make_poller(settings, publisher=FailingPublisher(settings, ok=2))
    assert failing.poll() == {"published": 2, "publish_failed": 1}
    assert redis_client.get(keys.INBOUND_CURSOR) == cursor
    assert redis_client.get(keys.poll_lock("incoming")) is None  # released
    assert make_poller(settings).poll() == {"published": 2, "duplicates": 2}
    assert [e["id"] for e in drain(settings.broker_url)] == ids
    assert float(redis_client.get(keys.INBOUND_CURSOR)) > float(cursor)


def test_a_lock_held_by_another_poller_skips_the_poll(env):
    settings, redis_client, admin = env
    inject(admin, "waiting")
    redis_client.set(keys.poll_lock("incoming"), "another-poller", px=60_000)
    poller = make_poller(settings)
    assert poller.poll() == {"skipped": 1}
    assert incoming_requests(admin) == 0
    assert redis_client.get(keys.poll_lock("incoming")) == "another-poller"  # not ours to release
    redis_client.delete(keys.poll_lock("incoming"))
    assert poller.poll() == {"published": 1}


class LockStealingPublisher(EventPublisher):
    """The lock runs out and another poller takes it while this one publishes."""

    def __init__(self, settings, redis_client) -> None:
        super().__init__(broker_connection(settings))
        self.redis_client = redis_client

    def publish(self, queue, event, *, headers=None) -> None:
        super().publish(queue, event, headers=headers)
        self.redis_client.set(keys.poll_lock("incoming"), "the-next-poller")


def test_a_poller_whose_lock_ran_out_does_not_move_the_cursor(env):
    settings, redis_client, admin = env
    inject(admin, "one")
    poller = make_poller(settings, publisher=LockStealingPublisher(settings, redis_client))
    assert poller.poll() == {"published": 1, "lock_lost": 1}
    assert redis_client.get(keys.INBOUND_CURSOR) is None
    assert redis_client.get(keys.poll_lock("incoming")) == "the-next-poller"  # not deleted by the loser


def test_no_rate_limit_slot_skips_the_poll(env):
    settings, _, admin = env

    class NoSlot:
        def acquire(self, *, max_wait: float) -> bool:
            return False

    poller = make_poller(settings, limiter=NoSlot())
    assert poller.poll() == {"skipped": 1}
    assert incoming_requests(admin) == 0


def test_events_per_second_through_poll_incoming(env):
    settings, redis_client, admin = env
    count = 2000
    for start in range(0, count, 500):
        inject(admin, *(f"message {i}" for i in range(start, start + 500)))
    poller: IncomingPoller = make_poller(settings)
    started = time.perf_counter()
    assert poller.poll() == {"published": count}
    elapsed = time.perf_counter() - started
    assert redis_client.llen("sms.inbound") == count
    print(f"\npoll_incoming: {count} incoming SMS in one poll, {elapsed:.2f} s, {count / elapsed:,.0f} events/s")
