"""Maintenance (the due mover, the sweeper, the pause probe) on a real Redis with a fake producer:
its decisions without Celery, beat or a worker process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from decimal import Decimal

import pytest
import redis

from core import keys
from core.message import Message
from core.pause import AccountCircuit
from core.states import State
from core.stats import Stats
from core.store import Move, Store
from worker.maintenance import BACKLOG_PATIENCE, Maintenance
from worker.policy import RetryPolicy

REQUEUE_AFTER = 300.0
PHONE = "37060000001"


class FakeDispatcher:
    """The broker as the sweeper sees it: how many tasks wait in each priority's queue."""

    def __init__(self) -> None:
        self.backlog: dict[str, int] = {}

    def waiting(self, priority: str) -> int:
        return self.backlog.get(priority, 0)


class FakeProducer:
    """What Maintenance uses of a Producer: the store, the dispatcher, and requeue (recorded here)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dispatcher = FakeDispatcher()
        self.requeued: list[tuple[str, str]] = []

    def requeue(self, items: Iterable[tuple[str, str]]) -> None:
        self.requeued.extend(items)


class Upkeep:
    def __init__(self, client: redis.Redis, *, max_attempts: int = 3) -> None:
        self.store = Store(client, record_ttl=3600)
        self.producer = FakeProducer(self.store)
        self.circuit = AccountCircuit(client, login="demo")
        self.maintenance = Maintenance(
            producer=self.producer,  # type: ignore[arg-type]
            circuit=self.circuit,
            policy=RetryPolicy(max_attempts=max_attempts, backoff_base=1.0, backoff_max=10.0),
        )

    def queued(self, message_id: str, *, age: float, priority: str = "normal", **fields) -> str:
        """A QUEUED message last given a task `age` seconds ago (by Redis's clock)."""
        then = self.store.now() - age
        self.store.create([Message(id=message_id, phone=PHONE, text="hi", sender="LightSMS", state=State.QUEUED,
                                   priority=priority, created_at=then, updated_at=then, **fields)])  # fmt: skip
        return message_id

    def sending(self, message_id: str, *, lease_left: float, inflight: bool, **fields) -> str:
        """A SENDING message whose lease runs out in `lease_left` seconds, its request started or not."""
        self.queued(message_id, age=0, **fields)
        lease, now = f"lease-{message_id}", self.store.now()
        live = now + 60  # a claim and begin_send need a live lease; it is run out below when asked
        claim = Move(message_id, (State.QUEUED,), State.SENDING, score=live,
                     fields=(("lease", lease), ("lease_until", live), ("inflight", "0")))  # fmt: skip
        assert self.store.move(claim)[0]
        if inflight:
            assert self.store.begin_send([message_id], lease=lease, lease_seconds=60) == {message_id}
        until = now + lease_left
        self.store.redis.zadd(keys.SENDING_INDEX, {message_id: until})
        self.store.redis.hset(keys.message(message_id), "lease_until", until)
        return message_id

    def get(self, message_id: str) -> Message:
        message = self.store.get(message_id)
        assert message is not None
        return message


@pytest.fixture
def upkeep(redis_server, redis_client) -> Upkeep:
    return Upkeep(redis_server.client())


# -- move_due ----------------------------------------------------------------------------------


def test_move_due_queues_what_is_due_and_leaves_the_rest(upkeep: Upkeep):
    now = time.time()
    for message_id, send_at, priority in [("due", now - 1, "high"), ("later", now + 600, "normal"),
                                          ("odd", now - 1, "urgent")]:  # fmt: skip
        upkeep.store.create([Message(id=message_id, phone=PHONE, text="hi", sender="LightSMS", state=State.SCHEDULED,
                                     send_at=send_at, priority=priority, created_at=now)])  # type: ignore[arg-type]  # fmt: skip
    assert upkeep.maintenance.move_due(now=now) == 2
    assert sorted(upkeep.producer.requeued) == [("due", "high"), ("odd", "normal")]  # an unknown priority: normal
    assert [upkeep.get(i).state for i in ("due", "later", "odd")] == [State.QUEUED, State.SCHEDULED, State.QUEUED]
    assert upkeep.store.redis.zscore(keys.queued_index("high"), "due") is not None
    assert upkeep.maintenance.move_due(now=now) == 0  # nothing twice


def test_move_due_skips_a_message_cancelled_meanwhile(upkeep: Upkeep):
    now = time.time()
    upkeep.store.create([Message(id="gone", phone=PHONE, text="hi", sender="LightSMS", state=State.SCHEDULED,
                                 send_at=now - 1, created_at=now)])  # fmt: skip
    assert upkeep.store.move(Move("gone", (State.SCHEDULED,), State.CANCELLED))[0]
    assert upkeep.maintenance.move_due(now=now) == 0
    assert upkeep.producer.requeued == []


# -- sweep: lost tasks -------------------------------------------------------------------------


def test_a_queued_message_whose_task_was_lost_is_queued_again(upkeep: Upkeep):
    upkeep.queued("lost", age=REQUEUE_AFTER + 5)
    upkeep.queued("fresh", age=REQUEUE_AFTER - 30)
    upkeep.queued("lost-bulk", age=REQUEUE_AFTER + 5, priority="bulk")
    result = upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)
    assert result["requeued"] == 2
    assert sorted(upkeep.producer.requeued) == [("lost", "normal"), ("lost-bulk", "bulk")]


def test_with_a_backlog_the_sweeper_waits_longer_before_calling_a_task_lost(upkeep: Upkeep):
    upkeep.producer.dispatcher.backlog["normal"] = 40  # its task may still be among these
    upkeep.queued("behind", age=REQUEUE_AFTER + 5)
    upkeep.queued("too-long", age=REQUEUE_AFTER * BACKLOG_PATIENCE + 5)
    upkeep.queued("other-queue", age=REQUEUE_AFTER + 5, priority="high")  # high has no backlog
    assert upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)["requeued"] == 2
    assert sorted(upkeep.producer.requeued) == [("other-queue", "high"), ("too-long", "normal")]


def test_a_message_no_longer_queued_is_not_queued_again(upkeep: Upkeep):
    upkeep.queued("cancelled", age=REQUEUE_AFTER + 5)
    assert upkeep.store.move(Move("cancelled", (State.QUEUED,), State.CANCELLED))[0]
    upkeep.store.redis.zadd(keys.queued_index("normal"), {"cancelled": 0})  # a stale index entry
    assert upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)["requeued"] == 0
    assert upkeep.producer.requeued == []


# -- sweep: leases that ran out ----------------------------------------------------------------


def test_a_lease_that_ran_out_before_any_request_goes_back_to_the_queue(upkeep: Upkeep):
    upkeep.sending("claimed", lease_left=-1, inflight=False, attempts=1)
    result = upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)
    assert (result["released"], result["unknown"]) == (1, 0)
    message = upkeep.get("claimed")
    assert (message.state, message.attempts, message.lease, message.inflight) == (State.QUEUED, 1, None, False)
    assert upkeep.producer.requeued == [("claimed", "normal")]


@pytest.mark.parametrize("on_unknown", ["hold", "resend"])
def test_a_lease_that_has_not_run_out_is_left_alone(upkeep: Upkeep, on_unknown: str):
    upkeep.sending("busy", lease_left=60, inflight=True, on_unknown=on_unknown)
    assert upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER) == {"requeued": 0, "released": 0, "unknown": 0}
    assert upkeep.get("busy").state is State.SENDING


def test_a_lease_that_ran_out_mid_request_is_unknown_when_held(upkeep: Upkeep):
    upkeep.sending("mid", lease_left=-1, inflight=True)
    result = upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)
    assert (result["released"], result["unknown"]) == (0, 1)
    message = upkeep.get("mid")
    assert (message.state, message.attempts, message.error_code) == (State.UNKNOWN, 1, "lease_expired")
    assert message.lease == "lease-mid"  # kept: a late reply of this very attempt still settles it
    assert upkeep.producer.requeued == []
    assert Stats(upkeep.store.redis).read()["unknown"] == "1"


def test_a_lease_that_ran_out_mid_request_is_resent_when_allowed(upkeep: Upkeep):
    upkeep.sending("mid", lease_left=-1, inflight=True, on_unknown="resend", attempts=1)
    result = upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)
    assert (result["released"], result["unknown"]) == (1, 0)
    message = upkeep.get("mid")
    assert (message.state, message.attempts, message.inflight) == (State.QUEUED, 2, False)
    assert upkeep.producer.requeued == [("mid", "normal")]


def test_resend_with_its_budget_spent_is_unknown(upkeep: Upkeep):
    upkeep.sending("spent", lease_left=-1, inflight=True, on_unknown="resend", attempts=2)  # max_attempts 3
    assert upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER)["unknown"] == 1
    assert (upkeep.get("spent").state, upkeep.get("spent").attempts) == (State.UNKNOWN, 3)
    assert upkeep.producer.requeued == []


# -- sweep: the pause probe --------------------------------------------------------------------


def probe_returning(balance: Decimal | Exception, calls: list[int]):
    def probe() -> Decimal:
        calls.append(1)
        if isinstance(balance, Exception):
            raise balance
        return balance

    return probe


def test_no_pause_no_probe(upkeep: Upkeep):
    calls: list[int] = []
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(Decimal(5), calls))
    assert calls == []


def test_a_probe_that_answers_ends_a_login_pause(upkeep: Upkeep):
    upkeep.circuit.pause(reason="invalid login", code=7, seconds=300)
    calls: list[int] = []
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(Decimal(0), calls))
    assert calls == [1]
    assert upkeep.circuit.current() is None


def test_a_failing_probe_keeps_the_pause(upkeep: Upkeep):
    upkeep.circuit.pause(reason="HTTP 404", code=None, seconds=300)
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(RuntimeError("down"), []))
    assert upkeep.circuit.current() is not None


def test_a_funds_pause_ends_only_when_the_balance_covers_one_part(upkeep: Upkeep):
    upkeep.circuit.record_price(Decimal("0.0144"))
    upkeep.circuit.pause(reason="insufficient funds", code=32, seconds=300)
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(Decimal("0.01"), []))
    assert upkeep.circuit.current() is not None
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(Decimal("0.02"), []))
    assert upkeep.circuit.current() is None


def test_a_pause_set_by_hand_is_never_probed_away(upkeep: Upkeep):
    by_hand = json.dumps({"reason": "maintenance", "until": time.time() + 300})
    upkeep.store.redis.set(keys.pause("demo"), by_hand, px=300_000)
    calls: list[int] = []
    upkeep.maintenance.sweep(requeue_after=REQUEUE_AFTER, balance_probe=probe_returning(Decimal(100), calls))
    assert calls == []
    assert upkeep.circuit.current() is not None



def test_the_sweep_drops_status_index_entries_older_than_any_record(redis_server, redis_client):
    store = Store(redis_server.client(), record_ttl=100)
    now = store.now()
    redis_client.zadd(keys.STATUS_DUE_INDEX, {"expired-long-ago": now - 500, "recent": now - 10})
    Maintenance(FakeProducer(store), AccountCircuit(store.redis, login="demo"), RetryPolicy(3, 1, 1)).sweep(  # type: ignore[arg-type]
        requeue_after=30
    )
    assert redis_client.zrange(keys.STATUS_DUE_INDEX, 0, -1) == ["recent"]
