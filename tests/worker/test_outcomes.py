"""The outcome table of DESIGN.md, as pure logic: which state each outcome leads to."""

import time
from decimal import Decimal

import pytest

from core.message import Message
from core.states import State
from lightsms.codes import Outcome
from lightsms.models import PhoneResult
from worker.outcomes import OutcomePlanner
from worker.policy import RetryPolicy

POLICY = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=4.0)


def planner() -> OutcomePlanner:
    return OutcomePlanner(policy=POLICY, record_ttl=100, lease="lease-1", status_schedule=(60.0, 300.0))


def msg(*, attempts: int = 0, on_unknown: str = "hold") -> Message:
    return Message(id="m1", phone="37060000001", text="hi", sender="LightSMS", state=State.SENDING,
                   attempts=attempts, on_unknown=on_unknown)  # fmt: skip


def test_accepted_becomes_sent_with_id_cost_and_parts():
    p = planner()
    before = time.time()
    p.result(msg(), PhoneResult("37060000001", 0, "accepted", Outcome.OK, "1234567890123456789012", Decimal("0.02"), 2))
    [move] = p.plan.moves
    fields = dict(move.fields)
    assert (move.to, move.lease, move.ttl) == (State.SENT, "lease-1", 100)
    assert fields["id_sms"] == "1234567890123456789012" and fields["parts"] == 2
    # its first status check is due at the schedule's first point after sending
    assert before <= float(fields["sent_at"]) <= time.time()
    assert move.score == float(fields["sent_at"]) + 60.0
    assert p.plan.cost == Decimal("0.02") and p.plan.parts == 2
    assert move.counter == "sent"


@pytest.mark.parametrize(
    ("outcome", "state", "counter"),
    [
        (Outcome.PERMANENT, State.FAILED, "failed:16"),
        (Outcome.SUPPRESSION, State.SUPPRESSED, "suppressed"),
        (Outcome.AMBIGUOUS, State.UNKNOWN, "unknown"),
        (Outcome.NOT_SENT, State.DEFERRED, "deferred"),
    ],
)
def test_each_outcome_class_leads_to_its_state(outcome, state, counter):
    p = planner()
    p.failure(msg(), outcome, code=16, meaning="invalid phone number")
    assert p.plan.moves[0].to is state
    assert dict(p.plan.moves[0].fields)["error_code"] == "16"
    assert p.plan.moves[0].counter == counter
    assert p.plan.opt_outs == (["37060000001"] if outcome is Outcome.SUPPRESSION else [])


def test_ambiguous_is_resent_only_when_the_message_allows_it():
    p = planner()
    p.failure(msg(on_unknown="resend"), Outcome.AMBIGUOUS, code=None, meaning="read timeout")
    assert p.plan.moves[0].to is State.DEFERRED


def test_spent_budget_makes_the_message_dead_with_a_reason():
    p = planner()
    p.failure(msg(attempts=2), Outcome.NOT_SENT, code=None, meaning="connection refused")
    move = p.plan.moves[0]
    assert move.to is State.DEAD
    assert "retry budget spent after 3 attempts" in dict(move.fields)["reason"]


def test_waiting_for_the_limiter_or_a_pause_does_not_spend_the_budget():
    p = planner()
    p.defer(msg(attempts=2), until=123.0, reason="paused")
    move = p.plan.moves[0]
    assert (move.to, move.score) == (State.DEFERRED, 123.0)
    assert "attempts" not in dict(move.fields)
    assert move.counter == ""  # waiting is no outcome to count
