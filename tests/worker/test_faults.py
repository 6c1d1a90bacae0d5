"""Faults from the simulator: each message ends in the state the outcome table says; nothing is lost."""

from __future__ import annotations

import pytest

from core.states import State
from producers.validation import OptedOutError
from tests.support.polling import wait_until
from tests.worker.stack import Stack, phones


def send_one(stack: Stack, phone: str, **options: object) -> str:
    return stack.producer.send(phone, "fault test", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [503, 429])
def test_throttling_answers_are_retried_and_the_message_is_sent_once(stack: Stack, status: int):
    stack.admin.faults(**{f"http_{status}_rate": 1.0, "count": 2})
    message_id = send_one(stack, phones(1)[0])
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT
    outcomes = [r["outcome"] for r in stack.admin.requests("send")]
    assert outcomes == [f"http:{status}", f"http:{status}", "accepted"]


def test_a_service_that_stays_unavailable_makes_the_message_dead_with_its_reason(stack: Stack):
    stack.admin.faults(http_503_rate=1.0)
    message_id = send_one(stack, phones(1)[0])
    [message] = stack.wait_settled([message_id], timeout=40)
    assert message.state is State.DEAD
    assert message.attempts == 3
    fields = stack.redis.hgetall(f"sms:msg:{message_id}")
    assert "retry budget spent after 3 attempts" in fields["reason"]
    assert stack.admin.messages() == []
    assert stack.redis.zscore("sms:idx:dead", message_id) is not None


def test_http_500_is_ambiguous_and_the_message_is_held_unknown(stack: Stack):
    stack.admin.faults(http_500_rate=1.0, count=1)
    message_id = send_one(stack, phones(1)[0])
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.UNKNOWN
    assert len(stack.admin.requests("send")) == 1


def test_http_500_is_resent_when_the_message_allows_it(stack: Stack):
    stack.admin.faults(http_500_rate=1.0, count=1)
    message_id = send_one(stack, phones(1)[0], on_unknown="resend")
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT
    assert [r["outcome"] for r in stack.admin.requests("send")] == ["http:500", "accepted"]


@pytest.mark.parametrize("fault", [{"stall_rate": 1.0, "stall_seconds": 3}, {"reset_rate": 1.0}])
def test_a_lost_answer_after_acceptance_leaves_the_message_unknown_and_never_resent(stack: Stack, fault):
    stack.admin.faults(count=1, **fault)
    phone = phones(1)[0]
    message_id = send_one(stack, phone)
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.UNKNOWN
    assert message.id_sms is None
    assert stack.accepted_by_phone() == {phone: 1}


def test_per_phone_errors_apply_to_their_own_message_only(stack: Stack):
    invalid, stopped, flaky, fine = phones(4)
    stack.admin.faults(phone_errors={invalid: 16, stopped: 13, flaky: 12})
    ids = stack.producer.send_many([invalid, stopped, flaky, fine], "mixed batch")
    by_phone = {m.phone: m for m in stack.wait_settled(ids, timeout=20)}
    assert (by_phone[invalid].state, by_phone[invalid].error_code) == (State.FAILED, "16")
    assert (by_phone[stopped].state, by_phone[stopped].error_code) == (State.SUPPRESSED, "13")
    assert (by_phone[flaky].state, by_phone[flaky].error_code) == (State.UNKNOWN, "12")
    assert by_phone[fine].state is State.SENT and by_phone[fine].id_sms
    assert len(stack.admin.requests("send")) == 1
    with pytest.raises(OptedOutError) as info:
        send_one(stack, stopped)
    assert info.value.field == "phone"


def test_a_request_level_permanent_error_fails_every_message_of_the_batch(stack: Stack):
    ids = stack.producer.send_many(phones(3), "hi", sender="Unregistrd")
    messages = stack.wait_settled(ids, timeout=20)
    assert {(m.state, m.error_code) for m in messages} == {(State.FAILED, "9")}


def test_insufficient_funds_pause_everyone_then_sending_resumes_by_itself(stack: Stack):
    numbers = phones(10)
    stack.admin.faults(balance=0.0144 * 4)  # four one-part messages
    ids = [send_one(stack, phone) for phone in numbers]

    def paused_with_deferred() -> bool:
        states = [m.state for m in stack.messages(ids)]
        return stack.redis.exists("sms:pause:demo") == 1 and states.count(State.SENT) == 4 and (
            all(s in (State.SENT, State.DEFERRED, State.QUEUED) for s in states)
        )

    wait_until(paused_with_deferred, timeout=20, message="sending was not paused with messages DEFERRED")
    assert State.FAILED not in {m.state for m in stack.messages(ids)}
    stack.admin.faults(balance=100)  # top-up: the sweeper's balance probe lifts the pause
    messages = stack.wait_settled(ids, timeout=30)
    assert {m.state for m in messages} == {State.SENT}
    assert stack.accepted_by_phone() == dict.fromkeys(numbers, 1)
    assert stack.redis.exists("sms:pause:demo") == 0


def test_clock_skew_is_absorbed_by_a_resync(stack: Stack):
    stack.admin.faults(clock_skew=300)
    message_id = send_one(stack, phones(1)[0])
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT
    assert len(stack.admin.requests("timestamp")) >= 1


def test_cancelled_before_sending_is_never_sent(stack: Stack):
    import time

    phone = phones(1)[0]
    message_id = stack.producer.send(phone, "later", send_at=time.time() + 2)
    assert stack.producer.cancel(message_id) is True
    assert stack.producer.get(message_id)["state"] == "CANCELLED"  # type: ignore[index]
    sentinel = stack.producer.send(phones(1, start=9)[0], "after", send_at=time.time() + 2.5)
    stack.wait_settled([sentinel], timeout=20)
    assert phone not in stack.accepted_by_phone()


def test_a_lower_batch_limit_at_lightsms_splits_the_batch_instead_of_failing_it(stack: Stack):
    stack.admin.faults(batch_limit=2)  # "more than N numbers" (14) above two phones
    numbers = phones(5)
    ids = stack.producer.send_many(numbers, "split me")
    messages = stack.wait_settled(ids, timeout=20)
    assert {m.state for m in messages} == {State.SENT}
    assert stack.accepted_by_phone() == dict.fromkeys(numbers, 1)
    refused = [r for r in stack.admin.requests("send") if r["outcome"] == "error:14"]
    assert refused, "the simulator never refused a batch: the split was not exercised"
