"""The STOP confirmation (opt_out_confirmation) is the one message an opted-out number still gets:
the producer stores it, the worker sends it; every other message to the number is refused or
SUPPRESSED as before."""

from __future__ import annotations

import pytest

from core import keys
from core.settings import Settings
from core.states import State
from lightsms.errors import InvalidInput
from producers import OptedOutError, Producer
from tests.worker.harness import PHONES, Harness, accepted

STOPPED = PHONES[0]


@pytest.fixture
def harness(redis_server, redis_client) -> Harness:
    redis_client.sadd(keys.OPT_OUT, STOPPED)
    return Harness(redis_server.client(), lambda phones: [accepted(p) for p in phones])


@pytest.fixture
def producer(redis_server, redis_client) -> Producer:
    settings = Settings(redis_url=redis_server.url, lightsms_base_url="http://127.0.0.1:9/", lightsms_sender="LightSMS")
    return Producer(settings, redis_client=redis_server.client())


def test_the_worker_sends_the_confirmation_and_suppresses_the_rest(harness: Harness):
    [confirmation] = harness.enqueue([STOPPED], prefix="c", opt_out_confirmation=True)
    [other] = harness.enqueue([STOPPED], prefix="o")
    harness.sender.run([confirmation, other])
    assert harness.states([confirmation, other]) == [State.SENT, State.SUPPRESSED]
    assert harness.client.calls == [[STOPPED]]


def test_the_producer_stores_the_confirmation_for_an_opted_out_number_and_refuses_the_rest(producer: Producer,
                                                                                          redis_client):  # fmt: skip
    redis_client.sadd(keys.OPT_OUT, STOPPED)
    message_id = producer.send(STOPPED, "You are unsubscribed", opt_out_confirmation=True)
    stored = producer.get(message_id)
    assert stored is not None and stored["opt_out_confirmation"] is True
    assert redis_client.hget(keys.message(message_id), "opt_out_confirmation") == "1"
    with pytest.raises(OptedOutError) as info:
        producer.send(STOPPED, "An offer")
    assert info.value.field == "phone"


def test_the_flag_must_be_a_bool(producer: Producer, redis_client):
    with pytest.raises(InvalidInput) as info:
        producer.send(PHONES[1], "hi", opt_out_confirmation="yes")  # type: ignore[arg-type]
    assert info.value.field == "opt_out_confirmation"
    assert redis_client.dbsize() == 0
