"""Reading stored priorities and on_unknown values: the one rule for what is not a known value."""

from __future__ import annotations

import pytest

from core import keys
from core.message import Message
from core.states import OnUnknown, Priority, State


@pytest.mark.parametrize(
    ("stored", "read"),
    [("high", Priority.HIGH), ("normal", Priority.NORMAL), ("bulk", Priority.BULK), ("urgent", Priority.NORMAL),
     ("HIGH", Priority.NORMAL), ("", Priority.NORMAL), (None, Priority.NORMAL)],
)  # fmt: skip
def test_an_unknown_priority_reads_normal(stored: object, read: Priority) -> None:
    assert Priority.read(stored) is read
    assert keys.queued_index(str(stored)) == f"sms:idx:queued:{read.value}"


def test_only_resend_resends() -> None:
    assert OnUnknown.read("resend") is OnUnknown.RESEND
    assert [OnUnknown.read(v) for v in ("hold", "", None, "RESEND", "yes")] == [OnUnknown.HOLD] * 5


def test_the_record_types_them_and_stores_the_same_strings() -> None:
    fields = {"id": "m", "state": "QUEUED", "priority": "urgent", "on_unknown": "resend"}
    message = Message.from_fields(fields)
    assert (message.priority, message.on_unknown) == (Priority.NORMAL, OnUnknown.RESEND)
    stored = Message(id="m", phone="1", text="t", sender="s", state=State.QUEUED, priority=Priority.BULK).to_fields()
    assert (stored["priority"], stored["on_unknown"]) == ("bulk", "hold")
    assert type(stored["priority"]) is str
