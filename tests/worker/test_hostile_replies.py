"""Replies no parser expected, and replies that never end, through a real worker: the simulator
accepts each SMS and then answers with a hostile body, or trickles its reply byte by byte."""

from __future__ import annotations

import json
import time

import pytest

from core.states import State
from tests.worker.stack import Stack, phones

P = phones(3, start=500)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def send_three(stack: Stack, body: str, **options: object) -> list[str]:
    stack.admin.faults(reply_body=body, count=1)
    return stack.producer.send_many(P, "hostile", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("on_unknown", ["hold", "resend"])
def test_each_phone_stands_alone_in_a_reply_with_unreadable_fields(stack: Stack, on_unknown: str):
    body = json.dumps({
        P[0]: {"error": "0", "id_sms": "1001", "cost": "1e400", "count_sms": "\u00b2"},
        P[1]: {"error": "\u00b2", "id_sms": "1002"},
        P[2]: {"error": "9" * 5000},
    })  # fmt: skip
    ids = send_three(stack, body, on_unknown=on_unknown)
    messages = stack.wait_settled(ids, timeout=20)
    assert [m.state for m in messages] == [State.SENT, State.UNKNOWN, State.UNKNOWN]
    assert messages[0].id_sms == "1001" and messages[0].unreadable == "cost,count_sms"
    # UNKNOWN, not DEFERRED: no phone is queued to be sent again, whatever on_unknown says
    assert stack.accepted_by_phone() == dict.fromkeys(P, 1)
    assert len(stack.admin.requests("send")) == 1


@pytest.mark.parametrize(
    "body",
    [deep(100_000), "<html><body>502 Bad Gateway</body></html>", '{"' + "a" * 100 + '": ', "\u00b2", "null"],
    ids=["deep-json", "html", "truncated", "superscript", "null"],
)
def test_a_reply_that_cannot_be_read_at_all_leaves_every_phone_unknown_at_once(stack: Stack, body: str):
    started = time.monotonic()
    ids = send_three(stack, body)
    messages = stack.wait_settled(ids, timeout=20)
    assert [m.state for m in messages] == [State.UNKNOWN] * 3
    assert time.monotonic() - started < 10, "settled by the lease, not at once"
    assert stack.accepted_by_phone() == dict.fromkeys(P, 1)


def test_a_reply_that_trickles_is_cut_off_at_the_deadline_and_the_worker_goes_on(stack: Stack):
    stack.admin.faults(trickle_rate=1.0, trickle_interval=0.3, count=1)
    started = time.monotonic()
    [slow] = stack.wait_settled([stack.producer.send(P[0], "trickled")], timeout=20)
    assert slow.state is State.UNKNOWN
    # the deadline is connect + read timeout here (2 s); without it the reply would take a minute
    assert time.monotonic() - started < 10
    [after] = stack.wait_settled([stack.producer.send(P[1], "after")], timeout=20)
    assert after.state is State.SENT
    assert stack.accepted_by_phone() == {P[0]: 1, P[1]: 1}
