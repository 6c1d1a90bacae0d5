"""The keyword router, called directly with inbound events, on a real Redis with a Producer, a real
worker process and the simulator: STOP, START and HELP, the reply limit, the loop guard, add2stop.php
on and off, and a redelivered event."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.keywords import KeywordRouter
from core import keys
from core.client import build_client
from core.contract import inbound_event
from core.message import Message
from core.states import State
from devtools.redis_server import RedisServer
from devtools.sim_process import SimProcess
from devtools.stack import Stack
from producers import OptedOutError

PHONE = "37061234567"
OUR_NUMBER = "5163251632"
_ids = itertools.count(5000)


@pytest.fixture(scope="module")
def running_stack(sim_process: SimProcess) -> Iterator[Stack]:
    """A Redis of this module's own and one worker (no beat: nothing here waits on the due mover)."""
    with RedisServer(appendonly=True) as server:
        stack = Stack(server, sim_process)
        try:
            stack.start_worker("kw")
            yield stack
        finally:
            stack.stop()


@pytest.fixture
def stack(running_stack: Stack) -> Stack:
    running_stack.reset()
    return running_stack


def router(stack: Stack, **options: Any) -> KeywordRouter:
    options.setdefault("add2stop", False)
    return KeywordRouter.from_settings(
        stack.settings(), producer=stack.producer, client_factory=lambda: build_client(stack.settings()), **options
    )


def event(text: str, *, sender: str = PHONE, sms_id: str | None = None) -> dict[str, Any]:
    return inbound_event(sms_id=sms_id or str(next(_ids)), received_at="2025-01-15T14:23:45+02:00",
                         sender=sender, phone=OUR_NUMBER, prefix="51632", text=text)  # fmt: skip


def records(stack: Stack) -> list[Message]:
    """Every message stored: each reply the router enqueued is one."""
    ids = [k.removeprefix(keys.MESSAGE_PREFIX) for k in stack.redis.scan_iter(match=keys.MESSAGE_PREFIX + "*")]
    return stack.messages(ids)


def reply_to(stack: Stack, inbound: dict[str, Any]) -> Message:
    message_id = stack.redis.get(keys.idempotency(f"keyword-reply:{inbound['id']}"))
    assert message_id, "no reply was enqueued for the event"
    [message] = stack.messages([message_id])
    return message


def opted_out(stack: Stack, phone: str = PHONE) -> bool:
    return bool(stack.redis.sismember(keys.OPT_OUT, phone))


def queued_before(stack: Stack, phone: str) -> str:
    """A message stored QUEUED whose task is not yet published: enqueued before a STOP, sent after it."""
    now = time.time()
    message = Message(id=f"earlier-{next(_ids)}", phone=phone, text="Sale starts today", sender="LightSMS",
                      state=State.QUEUED, created_at=now, updated_at=now)  # fmt: skip
    stack.producer.store.create([message])
    return message.id


# -- STOP ------------------------------------------------------------------------------------------

def test_stop_confirms_then_adds_to_lightsms_and_nothing_else_reaches_the_number(stack: Stack):
    earlier = queued_before(stack, PHONE)
    stop = event("  stop ")
    router(stack, add2stop=True)(stop)

    assert opted_out(stack)
    confirmation = reply_to(stack, stop)
    assert (confirmation.state, confirmation.opt_out_confirmation) == (State.SENT, True)
    assert confirmation.priority == "high"
    # add2stop.php only after the confirmation had been sent: LightSMS would have refused it with 13.
    assert [r["endpoint"] for r in stack.admin.requests() if r["endpoint"] in ("send", "add2stop")] == [
        "send", "add2stop"]  # fmt: skip
    assert stack.admin.requests("add2stop")[0]["outcome"] == "ok"

    with pytest.raises(OptedOutError) as info:
        stack.producer.send(PHONE, "Another offer")
    assert info.value.field == "phone"

    stack.producer.enqueue_ids([earlier], "normal")  # its task reaches the worker after the STOP
    [suppressed] = stack.wait_settled([earlier], timeout=20)
    assert (suppressed.state, suppressed.error_code) == (State.SUPPRESSED, "opted_out")
    assert len(stack.admin.requests("send")) == 1  # the confirmation only: LightSMS never saw the other
    assert [m["phone"] for m in stack.admin.messages()] == [PHONE]


def test_a_stop_already_on_lightsms_list_is_fine(stack: Stack):
    build_client(stack.settings()).blacklist_add(PHONE)
    stop = event("STOP")
    router(stack, add2stop=True)(stop)  # code 20 from add2stop.php is not an error
    assert opted_out(stack)
    assert stack.admin.requests("add2stop")[-1]["outcome"] == "error:20"
    # The confirmation met LightSMS's list as any send would (a number listed before, in the panel):
    # the router waited for its outcome all the same, and the record says what happened.
    confirmation = reply_to(stack, stop)
    assert (confirmation.state, confirmation.error_code) == (State.SUPPRESSED, "13")


def test_with_add2stop_off_lightsms_is_not_asked_and_start_makes_sends_work_again(stack: Stack):
    keywords = router(stack, add2stop=False)
    stop = event("UNSUBSCRIBE")
    keywords(stop)
    assert opted_out(stack)
    stack.wait_settled([reply_to(stack, stop).id], timeout=20)
    assert stack.admin.requests("add2stop") == []

    start = event("Start")
    keywords(start)
    assert not opted_out(stack)
    again = stack.producer.send(PHONE, "Welcome back")
    settled = stack.wait_settled([reply_to(stack, start).id, again], timeout=20)
    assert [m.state for m in settled] == [State.SENT, State.SENT]


def test_with_add2stop_on_start_leaves_lightsms_list_as_it_is_and_the_record_says_so(stack: Stack, caplog):
    keywords = router(stack, add2stop=True)
    keywords(event("STOP"))
    start = event("UNSTOP")
    with caplog.at_level(logging.WARNING, logger="lightsms_queue.keywords"):
        keywords(start)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "no API" in warning and "370*****567" in warning and PHONE not in warning

    # LightSMS still has the number on its own list: the START confirmation, accepted by the producer,
    # is refused with 13, and the record says why.
    [confirmation] = stack.wait_settled([reply_to(stack, start).id], timeout=20)
    assert (confirmation.state, confirmation.error_code) == (State.SUPPRESSED, "13")
    assert "stop list" in (confirmation.error_meaning or "")
    assert opted_out(stack)  # the worker put it back: sends are refused at the door until the panel is fixed


def test_the_local_stop_word_stops_too(stack: Stack):
    stop = event("стоп")  # LIGHTSMS_LOCAL_STOP_WORDS defaults to СТОП; case-folded
    router(stack)(stop)
    assert opted_out(stack)
    assert reply_to(stack, stop).text == stack.settings().lightsms_stop_reply


def test_extra_local_words_come_from_the_settings(stack: Stack):
    settings = stack.settings(lightsms_local_stop_words="ATSISAKYTI, hör auf")
    keywords = KeywordRouter.from_settings(settings, producer=stack.producer, add2stop=False)
    keywords(event("Hör auf"))
    assert opted_out(stack)


# -- HELP, the reply limit and the loop guard ----------------------------------------------------------

def test_help_twice_within_the_period_gets_one_reply(stack: Stack):
    keywords = router(stack)
    first = event("HELP")
    keywords(first)
    keywords(event("info"))
    [reply] = records(stack)
    assert reply.id == reply_to(stack, first).id
    assert reply.text == stack.settings().lightsms_help_text
    assert reply.phone == PHONE


def test_the_limit_is_per_kind_so_a_stop_then_a_start_are_both_confirmed(stack: Stack):
    keywords = router(stack)
    keywords(event("STOP"))
    keywords(event("START"))
    keywords(event("STOP"))  # a second STOP within the period: opted out, no second confirmation
    assert opted_out(stack)
    assert sorted(m.text for m in records(stack)) == sorted(
        [stack.settings().lightsms_stop_reply, stack.settings().lightsms_start_reply])


def test_a_period_of_zero_replies_every_time(stack: Stack):
    keywords = router(stack, period=0)
    keywords(event("HELP"))
    keywords(event("HELP"))
    assert len(records(stack)) == 2


@pytest.mark.parametrize("sender", ["51632", "123456", "LightSMS", "INFO-BANK", ""])
def test_short_codes_and_alphanumeric_senders_get_no_reply(stack: Stack, sender: str):
    keywords = router(stack)
    for text in ("HELP", "STOP", "START"):
        keywords(event(text, sender=sender))
    assert records(stack) == []
    assert stack.redis.scard(keys.OPT_OUT) == 0


def test_our_own_replies_coming_back_get_no_reply_and_reach_no_handler(stack: Stack):
    seen: list[dict[str, Any]] = []
    keywords = router(stack, fallback=seen.append)
    settings = stack.settings()
    for text in (settings.lightsms_help_text, f"  {settings.lightsms_stop_reply.upper()} "):
        keywords(event(text))
    keywords(event("HELP", sender=OUR_NUMBER))  # our own receiving number writing to itself
    keywords(event("anything", sender=OUR_NUMBER))
    assert records(stack) == []
    assert seen == []


def test_a_redelivered_event_sends_one_reply(stack: Stack):
    keywords = router(stack, period=0)  # no reply limit: the idempotency key alone prevents a second
    for text in ("HELP", "STOP"):
        inbound = event(text)
        keywords(inbound)
        keywords(dict(inbound))
    assert len(records(stack)) == 2


def test_a_redelivered_event_is_admitted_again_by_the_reply_limit(stack: Stack, monkeypatch):
    """A first delivery that took the reply slot and died before enqueueing still gets its reply."""
    keywords = router(stack)
    inbound = event("HELP")
    monkeypatch.setattr(keywords.producer, "send", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(ConnectionError):
        keywords(inbound)
    monkeypatch.undo()
    keywords(inbound)
    assert reply_to(stack, inbound).text == stack.settings().lightsms_help_text


def test_a_stop_whose_reply_fails_is_still_recorded_then_raises_for_a_retry(stack: Stack, monkeypatch):
    keywords = router(stack)
    monkeypatch.setattr(keywords.producer, "send", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(ConnectionError):
        keywords(event("STOP"))
    assert opted_out(stack)


def test_an_opted_out_number_asking_for_help_gets_nothing(stack: Stack):
    stack.redis.sadd(keys.OPT_OUT, PHONE)
    router(stack)(event("HELP"))
    assert records(stack) == []


# -- everything else ---------------------------------------------------------------------------------

def test_other_messages_go_to_the_fallback_handler_untouched(stack: Stack):
    seen: list[dict[str, Any]] = []
    keywords = router(stack, fallback=seen.append)
    for text in ("stop please", "HELP me", "B", "STOP!"):
        keywords(event(text))
    assert [e["text"] for e in seen] == ["stop please", "HELP me", "B", "STOP!"]
    assert records(stack) == [] and not opted_out(stack)


def test_without_a_fallback_other_messages_are_dropped(stack: Stack):
    assert router(stack)(event("hello")) is None
    assert records(stack) == []


def test_logs_mask_numbers_and_never_show_the_text(stack: Stack, caplog):
    with caplog.at_level(logging.DEBUG, logger="lightsms_queue"):
        router(stack)(event("STOP"))
        router(stack)(event("HELP", sender="51632"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "370*****567" in logged
    assert PHONE not in logged and stack.settings().lightsms_stop_reply not in logged


def test_add2stop_waits_a_bounded_time_for_a_confirmation_that_is_not_sent(stack: Stack, monkeypatch):
    # The reply's task is never published, so no worker sends it: the router stops waiting and opts
    # the number out at LightSMS anyway (opting out must not wait on a stuck queue).
    keywords = router(stack, add2stop=True, confirmation_wait=0.5, poll_interval=0.05)
    monkeypatch.setattr(keywords.producer.dispatcher, "recorded", lambda ids, priority, store: None)
    monkeypatch.setattr(keywords.producer.dispatcher, "enqueue", lambda ids, priority: None)
    started = time.monotonic()
    stop = event("STOP")
    keywords(stop)
    assert 0.5 <= time.monotonic() - started < 5
    assert reply_to(stack, stop).state is State.QUEUED
    assert opted_out(stack)
    assert stack.admin.requests("add2stop")[0]["outcome"] == "ok"


def test_the_consumer_runner_tells_routers_in_front_of_different_handlers_apart(stack: Stack):
    from consumers.failures import handler_name

    def tickets(event: dict[str, Any]) -> None: ...

    assert handler_name(router(stack)) == "consumers.keywords.KeywordRouter"
    assert handler_name(router(stack, fallback=tickets)).endswith(f"KeywordRouter[{__name__}.{tickets.__qualname__}]")
