"""Each example handler on a real Redis with a Producer: votes tallied, tickets opened and acknowledged,
rules answered, and a redelivered event doing nothing more; each module's `handle` once, built from
the environment as `lightsms-queue consume examples.<module>:handle` builds it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from core import keys
from core.contract import inbound_event
from core.message import Message
from core.settings import Settings
from examples import auto_reply_rules, poll_tally, ticket_intake
from examples.auto_reply_rules import AutoReplyRules, Rule
from examples.poll_tally import PollTally
from examples.ticket_intake import TicketIntake
from producers.producer import Producer

_ids = itertools.count(1)


def event(text: str, sender: str = "37061234567") -> dict[str, Any]:
    return inbound_event(sms_id=str(next(_ids)), received_at="2025-01-15T14:23:45+02:00", sender=sender,
                         phone="5163251632", prefix="51632", text=text)  # fmt: skip


@pytest.fixture
def producer(redis_server, redis_client) -> Producer:
    settings = Settings(redis_url=redis_server.url, lightsms_base_url="http://127.0.0.1:9/", lightsms_sender="LightSMS")
    return Producer(settings, redis_client=redis_server.client())


@pytest.fixture
def environment(redis_server, redis_client, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    for module in (poll_tally, ticket_intake, auto_reply_rules):
        monkeypatch.setattr(module, "_handler", None)


def replies(producer: Producer) -> list[Message]:
    found = producer.store.redis.scan_iter(match=keys.MESSAGE_PREFIX + "*")
    ids = [k.decode().removeprefix(keys.MESSAGE_PREFIX) for k in found]  # the producer's client: bytes
    return sorted((m for m in producer.store.get_many(ids) if m is not None), key=lambda m: m.created_at)


# -- the poll ------------------------------------------------------------------------------------------

def test_the_poll_tallies_one_answer_per_number_and_ignores_the_rest(redis_client):
    poll = PollTally(redis_client, poll="lunch")
    votes = [("a", "37060000001"), (" B ", "37060000002"), ("b", "37060000003"), ("D", "37060000004"),
             ("E", "37060000005"), ("A or B", "37060000006"), ("", "37060000007"),
             ("C", "37060000001")]  # fmt: skip  (the last: a second answer from the first voter)
    counted = [poll(event(text, sender)) for text, sender in votes]
    assert counted == ["A", "B", "B", "D", None, None, None, None]
    assert poll.results() == {"A": 1, "B": 2, "C": 0, "D": 1}
    assert "37060000001" not in str(redis_client.hgetall(poll.votes_key))  # voters by digest only


def test_a_redelivered_vote_counts_once(redis_client):
    poll = PollTally(redis_client)
    vote = event("C")
    poll(vote)
    poll(dict(vote))
    assert poll.results()["C"] == 1


def test_the_poll_handle_is_built_from_the_environment(environment, redis_client, monkeypatch):
    monkeypatch.setenv("POLL_NAME", "colours")
    assert poll_tally.handle(event("d")) == "D"
    assert redis_client.hget("example:poll:colours:tally", "D") == "1"


# -- support tickets -----------------------------------------------------------------------------------

def test_each_message_opens_a_ticket_acknowledged_with_its_number(producer, redis_client):
    intake = TicketIntake(redis_client, producer)
    first, second = event("My order has not arrived"), event("Wrong size", sender="37061234568")
    assert [intake(first), intake(second)] == [1, 2]
    assert [(m.phone, m.text) for m in replies(producer)] == [
        ("37061234567", "Ticket #1 received"), ("37061234568", "Ticket #2 received")]  # fmt: skip
    ticket = intake.ticket(1)
    assert (ticket["text"], ticket["event_id"], ticket["status"]) == ("My order has not arrived", first["id"], "open")


def test_a_redelivered_message_opens_no_second_ticket_and_sends_no_second_ack(producer, redis_client):
    intake = TicketIntake(redis_client, producer)
    message = event("Help with my bill")
    assert intake(message) == intake(dict(message)) == 1
    assert len(replies(producer)) == 1
    assert intake(event("Another")) == 2


def test_tickets_from_short_codes_or_opted_out_numbers_are_not_acknowledged(producer, redis_client):
    redis_client.sadd(keys.OPT_OUT, "37061234568")
    intake = TicketIntake(redis_client, producer)
    assert intake(event("from a service", sender="51632")) == 1
    assert intake(event("from an opted-out number", sender="37061234568")) == 2
    assert replies(producer) == []


def test_the_ticket_handle_is_built_from_the_environment(environment, redis_client):
    assert ticket_intake.handle(event("Broken screen")) == 1
    assert redis_client.get("example:ticket:counter") == "1"
    assert redis_client.llen("sms.normal") == 1  # the acknowledgement's task


# -- the auto-reply rule table ---------------------------------------------------------------------------

def test_the_first_matching_rule_answers(producer, redis_client):
    rules = AutoReplyRules(producer, redis_client)
    answered = [rules(event(text, sender=f"3706000000{i}")) for i, text in enumerate(
        [" hours ", "What do your prices look like?", "where is your shop", "HOURS please", "hello"])]  # fmt: skip
    assert answered == ["hours", "prices", "address", None, None]
    assert [m.text for m in replies(producer)] == [
        "We are open Monday to Friday, 9:00-18:00.", "Our prices: example.com/prices",
        "Find us at Gedimino pr. 1, Vilnius."]  # fmt: skip


def test_a_custom_table_and_the_reply_limits(producer, redis_client):
    table = [Rule.keyword("PIZZA", "Menu: example.com/pizza"), Rule.regex("late", r"\blate\b", "Sorry! On its way.")]
    rules = AutoReplyRules(producer, redis_client, rules=table, period=3600)
    assert rules(event("pizza")) == "pizza"
    assert rules(event("PIZZA")) is None  # once per rule per number per period
    assert rules(event("you are late")) == "late"  # another rule: answered
    assert rules(event("Menu: example.com/pizza", sender="37061234568")) is None  # our reply coming back
    assert rules(event("pizza", sender="PIZZERIA")) is None  # an alphanumeric sender
    redelivered = event("pizza", sender="37061234569")
    assert rules(redelivered) == rules(dict(redelivered)) == "pizza"  # the same event again ...
    assert len(replies(producer)) == 3  # ... sends nothing more


def test_the_rules_handle_is_built_from_the_environment(environment, redis_client):
    assert auto_reply_rules.handle(event("balance")) == "balance"
    assert redis_client.llen("sms.normal") == 1
