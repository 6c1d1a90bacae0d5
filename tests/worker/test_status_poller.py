"""StatusPoller in process: real Redis, the simulator over HTTP, events read back with plain kombu.

Messages are really sent to the simulator (so status.php knows their id_sms) and stored SENT as the
sender stores them; the simulator's admin API then says what status.php answers for each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from core import keys
from core.client import build_client
from core.events import EventPublisher, broker_connection
from core.message import Message
from core.pause import AccountCircuit
from core.settings import Settings
from core.states import State
from core.stats import Stats
from core.store import Move, Store
from devtools.polling import wait_until
from devtools.ports import free_port
from lightsms.client import STATUS_IDS_PER_CALL
from worker.delivery import StatusPoller
from worker.limiter import RateLimiter
from worker.poll_lock import PollLock

RECORD_TTL = 3600
EVENT_FIELDS = {"schema", "message_id", "id_sms", "status", "at", "metadata"}


class Rig:
    """A StatusPoller and what it talks to, built like worker/runtime.py builds it."""

    def __init__(self, redis_client, redis_server, sim_process, sim_admin, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "lightsms_login": "demo",
            "lightsms_api_key": "demo-key",
            "lightsms_base_url": sim_process.base_url,
            "redis_url": redis_server.url,
            "celery_broker_url": redis_server.url,
            "lightsms_max_rps": 1000,
            **overrides,
        }
        self.settings = Settings(**values)
        self.redis = redis_client
        self.admin = sim_admin
        self.store = Store(redis_client, record_ttl=RECORD_TTL)
        self.client = build_client(self.settings)
        self.limiter = RateLimiter(redis_client, login="demo", rate=self.settings.lightsms_max_rps)
        self.publisher = EventPublisher(broker_connection(self.settings))
        self.poller = self.poller_with(self.publisher)

    def poller_with(self, publisher: EventPublisher) -> StatusPoller:
        return StatusPoller(
            settings=self.settings, store=self.store, stats=Stats(self.redis), client=self.client,
            limiter=self.limiter, circuit=AccountCircuit(self.redis, login="demo"), publisher=publisher,
        )  # fmt: skip

    def sent(self, count: int, *, sent_ago: float = 0.0, id_sms: bool = True) -> list[Message]:
        """`count` messages accepted by the simulator and stored SENT, due now."""
        phones = [f"3706987{i:04d}" for i in range(count)]  # digits no id_sms or time is likely to hold
        ids: list[str] = []
        for start in range(0, count, 50):
            results = self.client.send(phones[start : start + 50], "Your code is 1234", sender="LightSMS")
            ids += [r.id_sms or "" for r in results]
        now = time.time()
        text, order = "Your code is 1234", enumerate(phones)
        messages = [Message(f"m{i}", p, text, "LightSMS", State.QUEUED, metadata={"order": i}) for i, p in order]
        self.store.create(messages)
        self.store.claim([m.id for m in messages], lease="L", lease_seconds=30)
        moves = []
        for m, provider_id in zip(messages, ids, strict=True):
            fields = (("id_sms", provider_id if id_sms else ""), ("error_code", "0"), ("sent_at", now - sent_ago))
            moves.append(
                Move(m.id, (State.SENDING,), State.SENT, score=now - 1, lease="L", ttl=RECORD_TTL, fields=fields)
            )
        assert all(ok for ok, _ in self.store.apply(moves))
        return self.records(messages)

    def records(self, messages: list[Message]) -> list[Message]:
        found = self.store.get_many([m.id for m in messages])
        assert all(m is not None for m in found)
        return [m for m in found if m is not None]

    def say(self, *words: tuple[Message, str]) -> None:
        """What status.php answers from now on for these messages."""
        assert self.admin.set_status({m.id_sms: word for m, word in words}) == len(words)

    def due_at(self, message: Message) -> float | None:
        return self.redis.zscore(keys.STATUS_DUE_INDEX, message.id)

    def make_due(self, *messages: Message) -> None:
        self.redis.zadd(keys.STATUS_DUE_INDEX, {m.id: time.time() - 1 for m in messages})

    def status_calls(self) -> int:
        return len(self.admin.requests("status"))

    def stats(self) -> dict[str, str]:
        return Stats(self.redis).read()


@pytest.fixture
def rig(redis_client, redis_server, sim_process, sim_admin) -> Iterator[Rig]:
    rig = Rig(redis_client, redis_server, sim_process, sim_admin)
    yield rig
    rig.publisher.close()


def events(rig: Rig) -> list[dict[str, Any]]:
    """Everything on sms.status, read the way a service without this package reads it."""
    found: list[dict[str, Any]] = []
    with Connection(rig.settings.broker_url) as connection:
        queue = connection.SimpleQueue("sms.status")
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            raw = message.body if isinstance(message.body, str) else message.body.decode()
            found.append(json.loads(raw))
            message.ack()
        queue.close()
    return found


def state_of(rig: Rig, message: Message) -> State:
    [record] = rig.records([message])
    return record.state


# -- moving forward --------------------------------------------------------------------------------


@pytest.mark.parametrize("success", ["delivered", "deliver"])
def test_statuses_move_sent_messages_forward_and_each_change_is_published(rig, success):
    a, b, c, d = rig.sent(4)
    rig.say((a, success), (b, "not_deliver"), (c, "expired"), (d, "partly_deliver"))

    counts = rig.poller.poll()

    assert [m.state for m in rig.records([a, b, c, d])] == [
        State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.PARTLY_DELIVERED,
    ]  # fmt: skip
    assert (counts["delivered"], counts["undelivered"], counts["expired"], counts["partly_delivered"]) == (1, 1, 1, 1)
    assert counts["status_calls"] == rig.status_calls() == 1
    delivered = rig.records([a])[0]
    assert delivered.delivery_status == success and delivered.status_at is not None
    # finals leave the index, with the record's TTL, and their id_sms map entry keeps it too
    assert [rig.due_at(m) for m in (a, b, c)] == [None, None, None]
    assert 0 < rig.redis.ttl(keys.id_sms(a.id_sms or "")) <= rig.redis.ttl(keys.message(a.id)) <= RECORD_TTL
    # partly delivered is asked again at its next check (60 s after sending), with the record's TTL
    assert rig.due_at(d) == pytest.approx((d.sent_at or 0) + 60, abs=0.01)
    assert 0 < rig.redis.ttl(keys.message(d.id)) <= RECORD_TTL

    published = events(rig)
    assert sorted((e["message_id"], e["status"]) for e in published) == [
        (a.id, "DELIVERED"), (b.id, "UNDELIVERED"), (c.id, "EXPIRED"), (d.id, "PARTLY_DELIVERED"),
    ]  # fmt: skip
    for event in published:
        assert set(event) == EVENT_FIELDS and event["schema"] == 1
        message = {m.id: m for m in (a, b, c, d)}[event["message_id"]]
        assert event["id_sms"] == message.id_sms and event["metadata"] == message.metadata
        assert event["at"].endswith("+00:00")
        # no phone number, nor its national part
        assert message.phone[3:] not in json.dumps(event)

    # partly delivered, then delivered
    rig.make_due(d)
    rig.say((d, success))
    assert rig.poller.poll()["delivered"] == 1
    assert state_of(rig, d) is State.DELIVERED and rig.due_at(d) is None
    assert [(e["message_id"], e["status"]) for e in events(rig)] == [(d.id, "DELIVERED")]
    stats = rig.stats()
    assert [stats[name] for name in ("delivered", "undelivered", "expired", "partly_delivered")] == ["2", "1", "1", "1"]


def test_sent_until_the_simulator_delivers_under_either_vocabulary(rig):
    rig.admin.faults(variants={"status_words": "deliver"})
    [m] = rig.sent(1)
    # first: "sent" (not final) -> still SENT, due again at the first point after sending
    counts = rig.poller.poll()
    assert counts["status_checks"] == 1 and "delivered" not in counts
    assert state_of(rig, m) is State.SENT
    assert rig.due_at(m) == pytest.approx((m.sent_at or 0) + 60, abs=0.01)
    assert events(rig) == []

    def delivered() -> bool:
        rig.make_due(m)
        rig.poller.poll()
        return state_of(rig, m) is State.DELIVERED

    wait_until(delivered, timeout=10, interval=0.2, message="the simulator's delivery")
    assert rig.records([m])[0].delivery_status == "deliver"
    assert [e["status"] for e in events(rig)] == ["DELIVERED"]


def test_a_message_the_reply_does_not_mention_is_asked_again_at_its_next_check(rig):
    a, b = rig.sent(2)
    rig.redis.hset(keys.message(b.id), "id_sms", "1" * 22)  # an id_sms the simulator never issued
    rig.redis.hset(keys.message(b.id), "sent_at", time.time() - 1000)  # the 300 s point is past
    rig.say((a, "pending"))
    rig.poller.poll()
    assert [m.state for m in rig.records([a, b])] == [State.SENT, State.SENT]
    assert rig.due_at(a) == pytest.approx((a.sent_at or 0) + 60, abs=0.01)
    assert rig.due_at(b) == pytest.approx(float(rig.redis.hget(keys.message(b.id), "sent_at")) + 3600, abs=0.01)
    assert events(rig) == []


# -- forward only ------------------------------------------------------------------------------------


def test_a_repeated_or_late_status_changes_nothing_and_publishes_nothing(rig):
    final, partly = rig.sent(2)
    rig.say((final, "delivered"), (partly, "partly_deliver"))
    rig.poller.poll()
    assert len(events(rig)) == 2

    # repeated: partly delivered again -> nothing; asked again later
    rig.make_due(partly)
    rig.poller.poll()
    assert state_of(rig, partly) is State.PARTLY_DELIVERED and rig.due_at(partly) is not None
    # late and backwards: "sent", "pending" after partly delivered -> nothing
    for word in ("sent", "pending"):
        rig.make_due(partly)
        rig.say((partly, word))
        rig.poller.poll()
        assert state_of(rig, partly) is State.PARTLY_DELIVERED
    # late after final: a delivered message is never asked again; an index entry left over (written
    # by hand here) is dropped without asking, whatever LightSMS would now say
    rig.say((final, "not_deliver"))
    rig.make_due(final)
    calls = rig.status_calls()
    counts = rig.poller.poll()
    assert counts["stale"] == 1 and rig.status_calls() == calls
    assert state_of(rig, final) is State.DELIVERED and rig.due_at(final) is None
    assert events(rig) == []


def test_the_compare_and_set_refuses_a_move_back_when_the_record_moved_on_meanwhile(rig):
    [m] = rig.sent(1)
    rig.say((m, "partly_deliver"))

    class Racing(EventPublisher):
        """Publishes, and meanwhile (between the poller's read and its move) the message is delivered."""

        def publish(self, queue, event, *, headers=None):
            super().publish(queue, event, headers=headers)
            rig.store.move(Move(m.id, (State.SENT,), State.DELIVERED, ttl=RECORD_TTL, id_sms=m.id_sms or ""))

    racing = Racing(broker_connection(rig.settings))
    try:
        counts = rig.poller_with(racing).poll()
    finally:
        racing.close()
    assert counts["refused"] == 1 and "partly_delivered" not in counts
    assert state_of(rig, m) is State.DELIVERED and rig.due_at(m) is None


# -- given up on -----------------------------------------------------------------------------------------


def test_past_the_deadline_a_message_stays_as_it_is_with_a_note_and_is_counted(rig):
    late, nearly = rig.sent(2, sent_ago=72 * 3600 + 1)
    rig.redis.hset(keys.message(nearly.id), "sent_at", time.time() - 71.5 * 3600)
    rig.say((late, "delivered"), (nearly, "sent"))  # LightSMS would say "delivered": not asked any more

    counts = rig.poller.poll()

    assert counts["status_deadline"] == 1 and counts["status_checks"] == 1
    record = rig.records([late])[0]
    assert record.state is State.SENT and "no final delivery status" in (record.status_note or "")
    assert rig.due_at(late) is None
    assert rig.stats()["status_deadline"] == "1"
    # the one still within it is due once more at the deadline itself, and then given up on
    sent_at = rig.records([nearly])[0].sent_at or 0
    assert rig.due_at(nearly) == pytest.approx(sent_at + 72 * 3600, abs=0.01)
    assert events(rig) == []


def test_a_message_accepted_without_an_id_sms_stays_sent_with_a_reason_and_is_counted(rig):
    [m] = rig.sent(1, id_sms=False)
    counts = rig.poller.poll()
    assert counts["status_untrackable"] == 1 and rig.status_calls() == 0
    record = rig.records([m])[0]
    assert record.state is State.SENT and "without an id_sms" in (record.status_note or "")
    assert rig.due_at(m) is None
    assert rig.stats()["status_untrackable"] == "1"
    assert rig.poller.poll().get("status_untrackable", 0) == 0  # counted once


# -- many per call, the shared rate limit ------------------------------------------------------------------


def test_250_due_messages_take_3_status_calls(rig):
    messages = rig.sent(250)
    rig.say(*((m, "delivered") for m in messages))

    counts = rig.poller.poll()

    calls = rig.status_calls()
    assert calls == counts["status_calls"] == 3
    assert counts["status_checks"] == counts["delivered"] == 250
    assert all(m.state is State.DELIVERED for m in rig.records(messages))
    assert len(events(rig)) == 250
    print(f"\nstatus checks per status.php call: {250 / calls:.1f} (250 due in {calls} calls;"
          f" at most {STATUS_IDS_PER_CALL} per call)")  # fmt: skip


def test_status_calls_take_slots_of_the_rate_limit_the_sends_share(rig, redis_client, redis_server, sim_process):
    slow = Rig(redis_client, redis_server, sim_process, rig.admin, lightsms_max_rps=0.01, lightsms_limiter_max_wait=0)
    try:
        [m] = slow.sent(1)
        rig.say((m, "delivered"))
        # a send takes the one slot of the next 100 s, through the sender's own limiter on the same key
        assert RateLimiter(redis_client, login="demo", rate=0.01).acquire(max_wait=0)
        redis_client.config_resetstat()
        counts = slow.poller.poll()
        assert counts["no_slot"] == 1 and slow.status_calls() == 0
        assert "cmdstat_hgetall" not in redis_client.info("commandstats")  # no record read for nothing
        assert state_of(slow, m) is State.SENT and (slow.due_at(m) or 0) <= time.time()  # still due
    finally:
        slow.publisher.close()


# -- failures ------------------------------------------------------------------------------------------------


def test_a_failed_publish_leaves_the_message_sent_and_due(rig):
    [m] = rig.sent(1)
    rig.say((m, "delivered"))
    dead = EventPublisher(Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5))
    try:
        counts = rig.poller_with(dead).poll()
    finally:
        dead.close()
    assert counts["failed"] == 1 and "delivered" not in counts
    assert state_of(rig, m) is State.SENT and (rig.due_at(m) or 0) <= time.time()
    assert rig.redis.hget(keys.POLLER_HEALTH, "status_ok_at") is None
    # the next poll, with the broker back, moves it
    assert rig.poller.poll()["delivered"] == 1
    assert [e["message_id"] for e in events(rig)] == [m.id]
    assert float(rig.redis.hget(keys.POLLER_HEALTH, "status_ok_at")) <= time.time()


def test_a_provider_error_leaves_the_messages_due_for_the_next_poll(rig):
    [m] = rig.sent(1)
    rig.admin.faults(endpoints=["status"], http_503_rate=1.0)
    counts = rig.poller.poll()
    assert counts["failed"] == 1 and "status_calls" not in counts
    assert state_of(rig, m) is State.SENT and (rig.due_at(m) or 0) <= time.time()


def test_a_paused_account_or_a_held_lock_skips_the_poll(rig):
    [m] = rig.sent(1)
    AccountCircuit(rig.redis, login="demo").pause(reason="insufficient funds", code=32, seconds=60)
    assert rig.poller.poll() == {"skipped_paused": 1}
    AccountCircuit(rig.redis, login="demo").resume()
    other = PollLock(rig.redis, keys.poll_lock("status"), ttl=60)
    assert other.acquire()
    assert rig.poller.poll() == {"skipped_locked": 1}
    assert rig.status_calls() == 0 and state_of(rig, m) is State.SENT
    other.release()
    assert rig.poller.poll()["status_checks"] == 1
    assert rig.redis.get(keys.poll_lock("status")) is None  # released after the poll
