"""send_at: accepted no earlier than send_at and within two seconds after it; a cancelled one never."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from core.states import State
from tests.worker.stack import Stack, phones


def test_scheduled_messages_go_out_on_time_and_cancelled_ones_never(stack: Stack):
    numbers = phones(6)
    send_at = time.time() + 4
    ids = [stack.producer.send(p, "see you soon", send_at=send_at) for p in numbers[:3]]
    ids += stack.producer.send_many(numbers[3:5], "see you soon",
                                    send_at=datetime.fromtimestamp(send_at + 1, tz=UTC))  # fmt: skip
    cancelled = stack.producer.send(numbers[5], "never", send_at=send_at)
    assert {stack.producer.get(i)["state"] for i in ids} == {"SCHEDULED"}  # type: ignore[index]
    assert stack.producer.cancel(cancelled) is True

    messages = stack.wait_settled(ids, timeout=30)
    assert {m.state for m in messages} == {State.SENT}
    accepted = {m["phone"]: m["accepted_at"] for m in stack.admin.messages()}
    assert sorted(accepted) == sorted(numbers[:5])
    lateness = []
    for m in messages:
        due = m.send_at
        assert due is not None
        assert accepted[m.phone] >= due, "sent before its send_at"
        lateness.append(accepted[m.phone] - due)
    assert max(lateness) <= 2.0, f"sent too late: {max(lateness):.2f}s after send_at"
    assert stack.producer.get(cancelled)["state"] == "CANCELLED"  # type: ignore[index]
    print(f"\nscheduled lateness: max {max(lateness):.2f}s, mean {sum(lateness) / len(lateness):.2f}s")


def test_provider_side_schedule_hands_the_time_to_lightsms_in_the_account_timezone(stack: Stack):
    from zoneinfo import ZoneInfo

    send_at = time.time() + 3600
    message_id = stack.producer.send(phones(1)[0], "LightSMS keeps this one", send_at=send_at, provider_schedule=True)
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT  # handed over now ...
    [accepted] = stack.admin.messages()
    expected = datetime.fromtimestamp(send_at + 60, tz=ZoneInfo("Europe/Vilnius")).strftime("%Y-%m-%d %H:%M")
    assert accepted["sendingTime"] == expected  # ... for LightSMS to send then (rounded up to the minute)
    assert accepted["status"] == "pending"
