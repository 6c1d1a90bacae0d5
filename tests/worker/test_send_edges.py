"""The send path at its edges, on a real Redis with a scripted LightSMS client: whatever happens
once a request may have been written, every claimed message is settled at once (never left to its
lease), an accepted phone stays SENT, nothing is queued to be sent twice, and each side effect
happens even when another fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest
import redis

from core import keys
from core.message import Message
from core.states import State
from lightsms.codes import Outcome
from lightsms.errors import InsufficientFundsError, ProviderUnavailableError, ThrottledError
from lightsms.models import PhoneResult
from tests.worker.harness import PHONES, Harness, accepted, raising
from worker.maintenance import Maintenance
from worker.policy import RetryPolicy


@pytest.fixture
def harness(redis_server, redis_client) -> Callable[..., Harness]:
    return lambda answer, **settings: Harness(redis_server.client(), answer, **settings)


@pytest.mark.parametrize(
    "exc",
    [RecursionError("deep"), ValueError("Exceeds the limit (4300 digits)"), OverflowError("inf"), TypeError("x"),
     KeyError("id_sms"), MemoryError(), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")],  # fmt: skip
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("on_unknown", ["hold", "resend"])
def test_any_exception_after_the_request_settles_every_message_unknown_at_once(harness, exc, on_unknown):
    h = harness(raising(exc))
    ids = h.enqueue(on_unknown=on_unknown)
    h.sender.run(ids)  # nothing escapes
    assert h.states(ids) == [State.UNKNOWN] * 3
    assert h.requeued == []  # never queued to be sent again, whatever on_unknown says
    assert h.store.redis.zcard(keys.SENDING_INDEX) == 0
    assert h.stats.read()["unknown"] == "3"
    assert len(h.client.calls) == 1


def test_a_shutdown_during_the_request_settles_then_lets_the_shutdown_through(harness):
    h = harness(raising(KeyboardInterrupt()))
    ids = h.enqueue()
    with pytest.raises(KeyboardInterrupt):
        h.sender.run(ids)
    assert h.states(ids) == [State.UNKNOWN] * 3


def test_a_failure_before_the_request_queues_the_claimed_messages_again(harness):
    h = harness(lambda phones: [accepted(p) for p in phones])

    def broken_begin(*args: object, **kwargs: object) -> set[str]:
        raise RuntimeError("the limiter's script is missing")

    h.store.begin_send = broken_begin  # type: ignore[method-assign]
    h.store.begin_send_in_slot = broken_begin  # type: ignore[method-assign]
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.QUEUED] * 3
    assert sorted(h.requeued) == [(i, "normal") for i in ids]
    assert h.client.calls == []


def test_one_phone_whose_result_breaks_the_planner_does_not_cost_the_others(harness):
    odd = PhoneResult(PHONES[1], 0, "accepted", Outcome.OK, id_sms="x", cost="lots", parts=1)  # type: ignore[arg-type]
    h = harness(lambda phones: [accepted(PHONES[0]), odd, accepted(PHONES[2])])
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT, State.UNKNOWN, State.SENT]


def test_an_accepted_phone_with_unreadable_fields_is_sent_and_says_which(harness):
    h = harness(lambda phones: [accepted(p, cost=None, parts=None, unreadable=("cost", "count_sms")) for p in phones])
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] * 3
    record = h.store.get(ids[0])
    assert record is not None and record.unreadable == "cost,count_sms" and record.id_sms == f"9{PHONES[0]}"
    assert record.cost is None and record.parts is None


def test_money_is_counted_exactly(harness):
    phones = [f"3706{i:07d}" for i in range(50)]
    h = harness(lambda sent: [accepted(p, cost=Decimal("0.0144"), parts=1) for p in sent])
    for round_ in range(3):
        h.sender.run(h.enqueue(phones, prefix=f"round{round_}-"))
    assert h.stats.read()["cost"] == "2.16"  # 150 x 0.0144, not 2.1600000000000001


def test_each_side_effect_happens_when_another_fails(harness):
    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        return [PhoneResult(PHONES[0], 13, "stop list", Outcome.SUPPRESSION),
                PhoneResult(PHONES[1], 32, "insufficient funds", Outcome.ACCOUNT), accepted(PHONES[2])]  # fmt: skip

    h = harness(answer)

    def broken_opt_out(*args, **kwargs) -> None:
        raise redis.ResponseError("WRONGTYPE")

    h.store.opt_out = broken_opt_out  # type: ignore[method-assign]
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SUPPRESSED, State.DEFERRED, State.SENT]
    assert h.store.opted_out(PHONES) == set()  # the one that failed
    counters = h.stats.read()  # kept with the moves
    assert (counters["suppressed"], counters["sent"], counters["cost"]) == ("1", "1", "0.0144")
    pause = h.circuit.current()
    assert pause is not None and pause.for_funds
    assert h.circuit.price() == Decimal("0.0144")


def test_a_long_retry_after_defers_until_then_without_spending_the_budget(harness):
    h = harness(raising(ThrottledError("busy", retry_after=3600)))
    ids = h.enqueue(PHONES[:1])
    before = time.time()
    h.sender.run(ids)
    [message] = h.store.get_many(ids)
    assert message is not None and message.state is State.DEFERRED and message.attempts == 0
    due = h.store.redis.zscore(keys.DUE_INDEX, ids[0])
    assert before + 3590 <= due <= time.time() + 3600
    assert len(h.client.calls) == 1  # not hammered within the window


def test_a_long_retry_after_waits_no_longer_than_the_message_is_valid(harness):
    h = harness(raising(ThrottledError("busy", retry_after=3600)))
    ids = h.enqueue(PHONES[:1], valid_until=time.time() + 60)
    h.sender.run(ids)
    assert h.store.redis.zscore(keys.DUE_INDEX, ids[0]) <= time.time() + 60


def test_a_provider_that_is_not_lightsms_pauses_sending_and_keeps_the_messages(harness):
    h = harness(raising(ProviderUnavailableError("send.php: HTTP 404: not LightSMS's API")))
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.DEFERRED] * 3
    assert [m.attempts for m in h.store.get_many(ids) if m] == [0, 0, 0]
    pause = h.circuit.current()
    assert pause is not None and "404" in pause.reason
    more = h.enqueue(["37060000009"], prefix="later")
    h.sender.run(more)  # paused: not even tried
    assert len(h.client.calls) == 1 and h.states(more) == [State.DEFERRED]


def test_a_reply_after_the_lease_ran_out_still_makes_the_message_sent(harness, redis_client):
    maintenance: list[Maintenance] = []

    def late(phones: Sequence[str]) -> list[PhoneResult]:
        # The sweeper gives up on the lease while the reply is on its way.
        maintenance[0]._settle_expired_leases(h.store.now() + 10_000)
        assert h.states(ids) == [State.UNKNOWN] * 3
        return [accepted(p) for p in phones]

    h = harness(late)
    producer = type("P", (), {"store": h.store, "requeue": h.requeued.extend})()
    maintenance.append(Maintenance(producer, h.circuit, RetryPolicy(3, 1, 1)))  # type: ignore[arg-type]
    ids = h.enqueue()
    h.sender.run(ids)
    messages = [m for m in h.store.get_many(ids) if m]
    assert [m.state for m in messages] == [State.SENT] * 3
    assert [m.id_sms for m in messages] == [f"9{p}" for p in PHONES]
    assert redis_client.zcard(keys.UNKNOWN_INDEX) == 0
    assert h.requeued == []


def test_an_unknown_message_is_not_moved_by_a_reply_of_another_attempt(harness, redis_client):
    h = harness(lambda phones: [accepted(p) for p in phones])
    ids = h.enqueue(PHONES[:1])
    h.sender.run(ids)
    # An operator resent it, it became UNKNOWN under a new lease; the old lease cannot settle it.
    redis_client.hset(keys.message(ids[0]), mapping={"state": "UNKNOWN", "lease": "someone-else"})
    from core.store import Move

    moved, _ = h.store.move(Move(ids[0], (State.SENDING, State.UNKNOWN), State.SENT, lease="old-lease"))
    assert not moved


def test_a_redis_blip_between_the_claim_and_the_request_is_ridden_out(harness):
    h = harness(lambda phones: [accepted(p) for p in phones])
    real_begin = h.store.begin_send_in_slot  # the call between the claim and the request
    failures = iter([redis.ConnectionError("Connection refused"), redis.TimeoutError("timeout")])
    calls: list[str] = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append("begin_send_in_slot")
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_begin(*args, **kwargs)

    h.store.begin_send_in_slot = flaky  # type: ignore[method-assign]
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] * 3 and h.client.calls == [PHONES]
    assert len(calls) == 3  # two blips, then the call that went through


def test_funds_pause_holds_while_the_balance_is_below_one_part(harness):
    h = harness(raising(InsufficientFundsError("insufficient funds", code=32)))
    h.circuit.record_price(Decimal("0.0144"))
    h.sender.run(h.enqueue(PHONES[:1]))
    assert h.circuit.current() is not None
    producer = type("P", (), {"store": h.store, "requeue": h.requeued.extend})()
    maintenance = Maintenance(producer, h.circuit, RetryPolicy(3, 1, 1))  # type: ignore[arg-type]
    maintenance._probe_pause(lambda: Decimal("0.01"))
    assert h.circuit.current() is not None  # positive, but not one part's worth
    maintenance._probe_pause(lambda: Decimal("0.0144"))
    assert h.circuit.current() is None


def test_pauses_close_together_grow_longer(harness):
    h = harness(lambda phones: [])
    first = h.circuit.pause(reason="funds", code=32, seconds=10)
    h.circuit.resume()
    second = h.circuit.pause(reason="funds", code=32, seconds=10)
    assert second.until - time.time() > (first.until - time.time()) + 8


@pytest.mark.parametrize("on_unknown", ["hold", "resend"])
def test_a_retry_after_the_lease_ran_out_sends_nothing(harness, on_unknown):
    answers = iter([ThrottledError("busy", retry_after=0.1)])

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return [accepted(p) for p in phones]

    h = harness(answer)
    ids = h.enqueue(on_unknown=on_unknown)

    def stall(seconds: float) -> None:  # the worker stalls between attempts, past its lease
        for message_id in ids:
            h.store.redis.hset(keys.message(message_id), "lease_until", h.store.now() - 1)

    h.sender.sleep = stall
    h.sender.run(ids)
    assert len(h.client.calls) == 1  # the second attempt found the lease gone and sent nothing
    assert h.states(ids) == [State.SENDING] * 3  # the sweeper's to settle (not sent: inflight after a 503)


@pytest.mark.parametrize("code", [13, 14, 16, 34])
def test_a_whole_request_refused_for_one_phones_sake_is_split_and_each_half_applied_in_turn(harness, code):
    from lightsms.errors import error_for_code

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        if len(phones) > 1:
            raise error_for_code(code, context="send.php")
        if phones[0] == PHONES[0]:  # by the time the second half goes, the first is already SENT
            return [accepted(phones[0])]
        assert h.states(["m0"]) == [State.SENT]
        return [accepted(p) for p in phones]

    h = harness(answer)
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] * 3
    assert [len(c) for c in h.client.calls] == [3, 1, 2, 1, 1]
    assert h.store.opted_out(PHONES) == set()


def test_strikes_past_any_float_do_not_stop_pausing(harness):
    h = harness(lambda phones: [])
    h.store.redis.set(keys.pause_strikes("demo"), 100_000)
    pause = h.circuit.pause(reason="invalid login", code=7, seconds=10)
    assert h.circuit.current() is not None and pause.until - time.time() <= 3600


def test_a_probe_ends_only_the_first_pauses_of_a_run_and_never_one_set_by_hand(harness):
    h = harness(lambda phones: [])
    producer = type("P", (), {"store": h.store, "requeue": h.requeued.extend})()
    maintenance = Maintenance(producer, h.circuit, RetryPolicy(3, 1, 1))  # type: ignore[arg-type]
    for _ in range(2):  # flapping: each pause is ended by a probe ...
        h.circuit.pause(reason="send.php: HTTP 404", code=None, seconds=10)
        maintenance._probe_pause(lambda: Decimal("100"))
        assert h.circuit.current() is None
    h.circuit.pause(reason="send.php: HTTP 404", code=None, seconds=10)
    maintenance._probe_pause(lambda: Decimal("100"))
    assert h.circuit.current() is not None  # ... until the run must wait its (longer) pauses out
    h.circuit.resume()
    h.store.redis.set(keys.pause("demo"), '{"reason": "maintenance window", "until": 0}')
    maintenance._probe_pause(lambda: Decimal("100"))
    pause = h.circuit.current()
    assert pause is not None and pause.reason == "maintenance window"
    # and a pause whose `until` has passed defers for a moment, not for no time at all
    ids = h.enqueue(PHONES[:1])
    h.sender.run(ids)
    assert h.store.redis.zscore(keys.DUE_INDEX, ids[0]) >= time.time() + 0.2


# -- one claim for the whole task --------------------------------------------------------------


def test_a_record_that_cannot_be_read_fails_with_why_and_is_not_sent(harness, redis_client):
    h = harness(lambda phones: [accepted(p) for p in phones])
    [good] = h.enqueue(PHONES[:1])
    redis_client.hset("sms:msg:bad", mapping={"state": "QUEUED", "id": "bad", "attempts": "many"})
    h.sender.run(["bad", good])
    record = redis_client.hgetall("sms:msg:bad")
    assert (record["state"], record["error_code"]) == ("FAILED", "unreadable")
    assert redis_client.zscore(keys.SENDING_INDEX, "bad") is None  # nothing left for the sweeper
    assert h.states([good]) == [State.SENT] and h.client.calls == [PHONES[:1]]


def test_a_pause_that_comes_during_a_task_holds_its_later_batches(harness):
    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        # another worker meets an account problem while this batch is in flight
        h.circuit.pause(reason="insufficient funds", code=32, seconds=60)
        return [accepted(p) for p in phones]

    h = harness(answer)
    first = h.enqueue(PHONES[:1], prefix="first")
    now = time.time()
    later = [Message(id="later", phone=PHONES[1], text="another text", sender="LightSMS", state=State.QUEUED,
                     created_at=now, updated_at=now)]  # fmt: skip
    h.store.create(later)
    h.sender.run([*first, "later"])
    assert h.states(first) == [State.SENT]
    [held] = h.store.get_many(["later"])
    assert held is not None and held.state is State.DEFERRED and held.lease is None
    assert len(h.client.calls) == 1


def test_a_shutdown_in_one_batch_gives_the_later_batches_back_at_once(harness):
    h = harness(raising(KeyboardInterrupt()))
    first = h.enqueue(PHONES[:1], prefix="first")
    now = time.time()
    h.store.create([Message(id="later", phone=PHONES[1], text="another text", sender="LightSMS",
                            state=State.QUEUED, created_at=now, updated_at=now)])  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        h.sender.run([*first, "later"])
    assert h.states([*first, "later"]) == [State.UNKNOWN, State.QUEUED]  # the request may have gone; not the later
    assert h.requeued == [("later", "normal")]


def test_a_wait_for_a_near_slot_is_counted_with_the_outcome(harness, redis_client, monkeypatch):
    monkeypatch.setattr("worker.sending.SLOT_WITH_MARK", 5.0)
    h = harness(lambda phones: [accepted(p) for p in phones])
    seconds, micros = redis_client.time()
    redis_client.set(h.limiter.key, str(seconds * 1_000_000 + micros + 2_000_000))  # the next slot in 2 s
    slept: list[float] = []
    h.sender.sleep = slept.append
    ids = h.enqueue(PHONES[:1])
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and len(slept) == 1 and 1.5 < slept[0] <= 2.0
    counters = h.stats.read()
    # counted as Redis gave it; slept from when the claim's reply was read, until the slot
    assert counters["limiter_waits"] == "1" and -1 < int(counters["limiter_wait_ms"]) - slept[0] * 1000 < 100


def test_a_claim_whose_reply_was_lost_while_a_pause_began_defers_what_it_took(harness, redis_client):
    h = harness(lambda phones: [accepted(p) for p in phones])
    ids = h.enqueue(PHONES[:2])
    claim = h.store.claim_to_send

    def reply_lost_then_paused(*args, **kwargs):
        claim(*args, **kwargs)  # claimed in Redis ...
        h.circuit.pause(reason="insufficient funds", code=32, seconds=60)  # ... another worker pauses
        h.store.claim_to_send = claim  # type: ignore[method-assign]
        raise redis.ConnectionError("reply lost")  # ... and the reply never came: _durably runs it again

    h.store.claim_to_send = reply_lost_then_paused  # type: ignore[method-assign]
    h.sender.run(ids)
    held = h.store.get_many(ids)
    assert [m.state for m in held if m] == [State.DEFERRED] * 2 and all(m.lease is None for m in held if m)
    assert h.client.calls == []


def test_phones_the_producer_checked_are_not_run_through_phonenumbers_again(harness, redis_client, monkeypatch):
    from lightsms import phones as phone_module

    h = harness(lambda phones: [accepted(p) for p in phones])
    now = time.time()
    produced = Message(id="produced", phone=PHONES[0], text="hi", sender="LightSMS", state=State.QUEUED,
                       created_at=now, updated_at=now, phone_checked=True)  # fmt: skip
    by_hand = Message(id="by-hand", phone="12345", text="hi", sender="LightSMS", state=State.QUEUED,
                      created_at=now, updated_at=now)  # fmt: skip
    h.store.create([produced, by_hand])
    checked: list[str] = []
    real = phone_module._normalized

    def counted(raw: str, default_region: str | None) -> str:
        checked.append(raw)
        return real.__wrapped__(raw, default_region)  # not from the cache: every check seen

    monkeypatch.setattr(phone_module, "_normalized", counted)
    h.sender.run(["produced", "by-hand"])
    assert checked == ["12345"]  # only the record written by other means, once
    assert h.states(["produced"]) == [State.SENT] and h.client.calls == [[PHONES[0]]]
    [refused] = h.store.get_many(["by-hand"])
    assert refused is not None and (refused.state, refused.error_code) == (State.FAILED, "invalid")


# -- a send() of one message: slot and in-flight mark taken with the claim ----------------------------

def _counting_begins(h: Harness) -> list[str]:
    """The begin_send calls the sender makes, by name."""
    calls: list[str] = []
    for name in ("begin_send", "begin_send_in_slot"):
        real = getattr(h.store, name)

        def counted(*args: object, _real: Callable[..., object] = real, _name: str = name, **kwargs: object) -> object:
            calls.append(_name)
            return _real(*args, **kwargs)

        setattr(h.store, name, counted)
    return calls


def test_one_checked_message_is_marked_and_given_its_slot_by_the_claim_and_sent_once(harness):
    seen: list[str | None] = []

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        seen.append(h.store.redis.hget(keys.message("m0"), "inflight"))  # as the request goes out
        return [accepted(p) for p in phones]

    h = harness(answer)
    begins = _counting_begins(h)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and h.client.calls == [[PHONES[0]]]
    assert begins == [] and seen == [b"1"]
    # a send_many's task (one send.php call) likewise
    many = h.enqueue(PHONES, prefix="many", phone_checked=True)
    h.sender.run(many)
    assert h.states(many) == [State.SENT] * 3 and h.client.calls[-1] == list(PHONES) and begins == []
    # a record our producer did not write is checked first, and marked by begin_send as before
    unchecked = h.enqueue([PHONES[1]], prefix="u")
    h.sender.run(unchecked)
    assert h.states(unchecked) == [State.SENT] and begins == ["begin_send_in_slot"]


def test_a_retried_request_after_a_marked_claim_confirms_the_message_is_still_ours(harness):
    from lightsms.errors import ConnectError

    answers = iter([ConnectError("refused"), None])

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        failure = next(answers)
        if failure is not None:
            raise failure
        return [accepted(p) for p in phones]

    h = harness(answer)
    begins = _counting_begins(h)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and len(h.client.calls) == 2
    assert begins == ["begin_send_in_slot"]  # the second attempt only


def test_a_marked_message_the_worker_refuses_is_failed_not_sent(harness):
    h = harness(lambda phones: [accepted(p) for p in phones], lightsms_max_parts=1)
    now = time.time()
    long_text = Message(id="long", phone=PHONES[0], text="x" * 400, sender="LightSMS", state=State.QUEUED,
                        created_at=now, updated_at=now, phone_checked=True)  # fmt: skip
    h.store.create([long_text])
    h.sender.run(["long"])
    [refused] = h.store.get_many(["long"])
    assert refused is not None and (refused.state, refused.error_code, refused.inflight) == (State.FAILED, "invalid",
                                                                                             False)  # fmt: skip
    assert h.client.calls == []


def test_a_booked_limiter_leaves_the_claim_unmarked_and_the_message_waits_in_line(harness):
    from worker.sending import MARK_LEAD

    times: dict[str, float] = {}
    h = harness(lambda phones: times.setdefault("send", time.time()) and [accepted(p) for p in phones])
    h.sender.sleep = time.sleep  # the wait in line is real: half a second
    begins = _counting_begins(h)
    begin = h.store.begin_send

    def timed_begin(*args: object, **kwargs: object) -> object:
        times["begin"] = time.time()
        return begin(*args, **kwargs)

    h.store.begin_send = timed_begin  # type: ignore[method-assign]
    booked_until = int((time.time() + 0.5) * 1_000_000)  # the next free slot half a second away
    h.store.redis.set(h.limiter.key, booked_until, px=60_000)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    started = time.monotonic()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT]
    assert begins == ["begin_send"]  # after waiting in line, not with the claim
    assert h.sender._limiter_booked_until > started + 0.4  # claims meanwhile ask for no slot
    slot = booked_until / 1_000_000  # Redis TIME is this machine's clock
    # marked just before the slot (its round trip does not make the request late), sent at the slot
    assert slot - MARK_LEAD - 0.1 < times["begin"] < slot and slot <= times["send"] < slot + 0.1


def test_once_marked_in_flight_a_batch_only_waits_for_its_slot_and_asks_redis_nothing(harness):
    """Between the mark and the request nothing may stall on Redis: a lease could run out meanwhile
    and the sweeper find the message UNKNOWN while its request is still to go. A marked batch that
    wakes late for its slot goes, late."""
    h = harness(lambda phones: [accepted(p) for p in phones])
    overslept = [0.03]

    def sleep(seconds: float) -> None:
        time.sleep(seconds + (overslept.pop() if overslept else 0.0))

    h.sender.sleep = sleep
    seconds, micros = h.store.redis.time()
    h.store.redis.set(h.limiter.key, str(seconds * 1_000_000 + micros + 10_000))  # the next slot in 10 ms
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    asked: list[str] = []
    reserve = h.limiter._reserve

    def counted_reserve(max_wait: float) -> tuple[float, float]:
        asked.append("reserve")
        return reserve(max_wait)

    h.limiter._reserve = counted_reserve  # type: ignore[method-assign]
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and h.client.calls == [[PHONES[0]]]
    assert asked == [] and "limiter_late" not in h.stats.read()  # the claim took the slot; nothing more


def test_lightsms_s_clock_is_made_ready_before_the_claim_can_take_a_slot(harness):
    h = harness(lambda phones: [accepted(p) for p in phones])
    order = h.client.calls_in_order
    claim = h.store.claim_to_send

    def claiming(*args: object, **kwargs: object):
        order.append("claim")
        return claim(*args, **kwargs)

    h.store.claim_to_send = claiming  # type: ignore[method-assign]
    h.sender.run(h.enqueue([PHONES[0]], phone_checked=True))
    assert order == ["ready", "claim", "send"]


def test_a_wait_in_line_for_a_batch_then_found_taken_is_still_counted(harness, redis_client):
    h = harness(lambda phones: [accepted(p) for p in phones])
    seconds, micros = redis_client.time()
    redis_client.set(h.limiter.key, str(seconds * 1_000_000 + micros + 300_000))  # booked for 0.3 s
    ids = h.enqueue(PHONES[:2])

    def taken_while_waiting(seconds: float) -> None:  # another worker's sweeper took them meanwhile
        for message_id in ids:
            redis_client.hset(keys.message(message_id), "lease", "someone-else")

    h.sender.sleep = taken_while_waiting
    h.sender.run(ids)
    assert h.client.calls == []
    counters = h.stats.read()
    assert counters["limiter_waits"] == "1" and 200 < int(counters["limiter_wait_ms"]) <= 300


@pytest.mark.parametrize("checked", [True, False], ids=["slot-taken-by-the-claim", "slot-taken-with-the-mark"])
def test_a_slot_taken_with_the_mark_is_waited_for_from_the_reading_so_late_readers_keep_their_spacing(
    harness, redis_client, checked
):
    """A thread that reads the script's reply 50 ms late (the GIL, a busy CPU) still waits the 15 ms
    to its slot from then: a marked batch cannot take another slot, and late readers that all went
    at once would crowd one second at LightSMS (see BatchSender._slot_taken)."""
    h = harness(lambda phones: [accepted(p) for p in phones])
    slept: list[float] = []
    h.sender.sleep = slept.append
    name = "claim_to_send" if checked else "begin_send_in_slot"
    script = getattr(h.store, name)

    waits: list[float] = []

    def read_late(*args: object, **kwargs: object) -> object:
        reply = script(*args, **kwargs)
        waits.append(reply.marked_wait if checked else reply[1])
        time.sleep(0.05)
        return reply

    setattr(h.store, name, read_late)
    seconds, micros = redis_client.time()
    redis_client.set(h.limiter.key, str(seconds * 1_000_000 + micros + 15_000))  # the next slot in 15 ms
    ids = h.enqueue([PHONES[1]], phone_checked=checked)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT]
    [wait] = waits
    assert 0 < wait <= 0.015 and len(slept) == 1 and wait - 0.005 < slept[0] <= wait, (wait, slept)
