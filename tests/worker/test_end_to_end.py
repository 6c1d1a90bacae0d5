"""1,000 messages through `send` and `send_many`: each accepted exactly once, each record SENT."""

from __future__ import annotations

import time
from decimal import Decimal

from core.states import State
from core.stats import Stats
from tests.worker.stack import Stack, phones


def assert_sent_once_each(stack: Stack, ids: list[str], numbers: list[str]) -> None:
    messages = stack.wait_settled(ids, timeout=90)
    assert {m.state for m in messages} <= {State.SENT, State.DELIVERED}  # DELIVERED: the status poll came first
    accepted = stack.accepted_by_phone()
    assert sorted(accepted) == sorted(numbers)
    assert set(accepted.values()) == {1}, "a phone was accepted more than once"
    by_id = {m["id_sms"]: m for m in stack.admin.messages()}
    for message in messages:
        assert message.id_sms in by_id and by_id[message.id_sms]["phone"] == message.phone
        assert message.parts == 1 and Decimal(message.cost or "0") > 0


def test_one_thousand_messages_via_send_and_send_many(stack: Stack):
    one_thousand_messages(stack)
    [worker] = [p for p in stack.processes if p.name.startswith("worker-")]
    log = worker.log_path.read_text()
    # Celery's two lines for every task are for --loglevel=DEBUG (test_logging.py): not one per SMS at INFO
    assert "ready." in log and "lightsms.send[" not in log and "succeeded in" not in log


def one_thousand_messages(stack: Stack) -> None:
    """The end-to-end send test; test_rabbitmq_broker.py runs it again with RabbitMQ as the broker."""
    single = phones(500)
    bulk = phones(500, start=500)
    started = time.monotonic()
    ids = [stack.producer.send(p, "Your code is 1234") for p in single]
    ids += stack.producer.send_many(bulk, "Spring sale starts today", priority="bulk")
    assert len(set(ids)) == 1000
    assert_sent_once_each(stack, ids, single + bulk)
    elapsed = time.monotonic() - started
    stats = Stats(stack.producer.store.redis).read()
    assert stats["sent"] == "1000" and stats["parts"] == "1000"
    # send_many batches: 500 recipients in ceil(500 / 50) send.php calls
    send_calls = [r for r in stack.admin.requests("send") if r["outcome"] == "accepted"]
    assert len(send_calls) == 500 + 10
    print(f"\n1,000 messages SENT in {elapsed:.1f}s ({1000 / elapsed:.0f} msg/s); send.php calls: {len(send_calls)}")


def test_get_shows_state_and_details_and_cancel_refuses_once_sent(stack: Stack):
    message_id = stack.producer.send("+370 600 00001", "hello")
    [message] = stack.wait_settled([message_id], timeout=20)
    shown = stack.producer.get(message_id)
    assert shown is not None
    assert shown["state"] == "SENT" and shown["phone"] == "37060000001" and shown["id_sms"] == message.id_sms
    assert "lease" not in shown
    assert stack.producer.cancel(message_id) is False
    assert stack.producer.get("no-such-id") is None
