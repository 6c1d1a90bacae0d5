"""The outcome table of DESIGN.md ("Outcome classes"), row by row, through BatchSender with a scripted
client and a real Redis: each per-phone code and each exception class of the client, to the final
state, attempts, counters, local opt-out and account pause. No processes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from core import keys
from core.states import State
from lightsms.codes import Outcome, lookup
from lightsms.errors import (
    AmbiguousError,
    ClockRejectedError,
    ConnectError,
    InsufficientFundsError,
    InvalidLoginError,
    LightSmsError,
    PermanentError,
    ProviderUnavailableError,
    SuppressionError,
    ThrottledError,
)
from lightsms.models import PhoneResult
from tests.worker.harness import Harness, accepted, raising

PHONE = "37060000001"
MAX_ATTEMPTS = 3


@pytest.fixture
def harness(redis_server, redis_client) -> Callable[..., Harness]:
    # A retry window of 0: one attempt per task, so "not sent" goes straight to the due set.
    return lambda answer: Harness(redis_server.client(), answer, lightsms_retry_window=0,
                                  lightsms_max_attempts=MAX_ATTEMPTS)  # fmt: skip


def coded(code: int | None) -> Callable[[Sequence[str]], list[PhoneResult]]:
    """send.php answers with `code` under each phone (None: no readable code)."""
    entry = lookup(code) if code is not None else None

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        if entry is None:
            return [PhoneResult(p, None, "no code", Outcome.AMBIGUOUS) for p in phones]
        return [PhoneResult(p, entry.code, entry.meaning, entry.outcome) for p in phones]

    return answer


def run_one(h: Harness, *, on_unknown: str = "hold", attempts: int = 0) -> dict[str, Any]:
    [message_id] = h.enqueue([PHONE], on_unknown=on_unknown, attempts=attempts)
    h.sender.run([message_id])
    [message] = h.store.get_many([message_id])
    assert message is not None
    pause = h.circuit.current()
    return {
        "state": message.state,
        "attempts": message.attempts,
        "error_code": message.error_code,
        "counters": {k: v for k, v in h.stats.read().items() if k not in ("cost", "parts") and v != "0"},
        "opted_out": bool(h.store.redis.sismember(keys.OPT_OUT, PHONE)),
        "pause": None if pause is None else (pause.code, pause.for_funds),
        "requeued": list(h.requeued),
        "calls": len(h.client.calls),
        "due": h.store.redis.zscore(keys.DUE_INDEX, message_id) is not None,
    }


# (row, answer, on_unknown, state, attempts, error_code, counters, opted out, pause (code, for funds))
PER_PHONE = [
    ("OK", lambda phones: [accepted(p) for p in phones], "hold", State.SENT, 0, "0", {"sent": "1"}, False, None),
    ("PERMANENT 8 sender", coded(8), "hold", State.FAILED, 0, "8", {"failed:8": "1"}, False, None),
    ("PERMANENT 11 forbidden words", coded(11), "resend", State.FAILED, 0, "11", {"failed:11": "1"}, False, None),
    ("PERMANENT 16 invalid phone", coded(16), "hold", State.FAILED, 0, "16", {"failed:16": "1"}, False, None),
    ("PERMANENT 31 closed direction", coded(31), "hold", State.FAILED, 0, "31", {"failed:31": "1"}, False, None),
    ("SUPPRESSION 13", coded(13), "hold", State.SUPPRESSED, 0, "13", {"suppressed": "1"}, True, None),
    ("SUPPRESSION 34", coded(34), "resend", State.SUPPRESSED, 0, "34", {"suppressed": "1"}, True, None),
    ("ACCOUNT 7 login", coded(7), "hold", State.DEFERRED, 0, None, {}, False, (7, False)),
    ("ACCOUNT 32 funds", coded(32), "hold", State.DEFERRED, 0, None, {}, False, (32, True)),
    ("ACCOUNT 35 funds", coded(35), "resend", State.DEFERRED, 0, None, {}, False, (35, True)),
    ("AMBIGUOUS 12 hold", coded(12), "hold", State.UNKNOWN, 1, "12", {"unknown": "1"}, False, None),
    ("AMBIGUOUS 12 resend", coded(12), "resend", State.DEFERRED, 1, "12", {"deferred": "1"}, False, None),
    ("AMBIGUOUS unknown code", coded(999), "hold", State.UNKNOWN, 1, "999", {"unknown": "1"}, False, None),
    ("NOT SENT 6 signature", coded(6), "hold", State.DEFERRED, 1, "6", {"deferred": "1"}, False, None),
    # 18 belongs to status.php: under a phone of a send it proves nothing
    ("NOT SENT 18 under a phone", coded(18), "hold", State.UNKNOWN, 1, "18", {"unknown": "1"}, False, None),
    # no readable code: held UNKNOWN even when the message may be resent
    ("no code, resend", coded(None), "resend", State.UNKNOWN, 1, "unreadable", {"unknown": "1"}, False, None),
]

RAISED = [
    ("NOT SENT connect", ConnectError("refused"), "hold", State.DEFERRED, 1, "ConnectError", {"deferred": "1"},
     False, None),
    ("NOT SENT 429", ThrottledError("HTTP 429"), "hold", State.DEFERRED, 1, "ThrottledError", {"deferred": "1"},
     False, None),
    ("NOT SENT clock", ClockRejectedError("refused", code=24), "hold", State.DEFERRED, 1, "24", {"deferred": "1"},
     False, None),
    ("PERMANENT", PermanentError("sender not approved", code=10), "resend", State.FAILED, 0, "10",
     {"failed:10": "1"}, False, None),
    ("SUPPRESSION", SuppressionError("stop list", code=13), "hold", State.SUPPRESSED, 0, "13", {"suppressed": "1"},
     True, None),
    ("ACCOUNT login", InvalidLoginError("invalid login", code=7), "hold", State.DEFERRED, 0, None, {}, False,
     (7, False)),
    ("ACCOUNT funds", InsufficientFundsError("no money", code=32), "hold", State.DEFERRED, 0, None, {}, False,
     (32, True)),
    ("ACCOUNT not the API", ProviderUnavailableError("HTTP 404"), "hold", State.DEFERRED, 0, None, {}, False,
     (None, False)),
    ("AMBIGUOUS read timeout, hold", AmbiguousError("read timeout"), "hold", State.UNKNOWN, 1, "AmbiguousError",
     {"unknown": "1"}, False, None),
    ("AMBIGUOUS read timeout, resend", AmbiguousError("read timeout"), "resend", State.DEFERRED, 1,
     "AmbiguousError", {"deferred": "1"}, False, None),
    ("AMBIGUOUS 12", AmbiguousError("error sending", code=12), "hold", State.UNKNOWN, 1, "12", {"unknown": "1"},
     False, None),
]  # fmt: skip


def _check(got: dict[str, Any], state, attempts, error_code, counters, opted_out, pause) -> None:
    assert got["state"] is state
    assert got["attempts"] == attempts
    if error_code is not None:
        assert got["error_code"] == error_code
    assert got["counters"] == counters
    assert got["opted_out"] is opted_out
    assert got["pause"] == pause
    assert got["requeued"] == []  # nothing goes straight back to the queue: the due set holds retries
    assert got["calls"] == 1
    assert got["due"] is (state is State.DEFERRED)


@pytest.mark.parametrize(
    ("answer", "on_unknown", "state", "attempts", "error_code", "counters", "opted_out", "pause"),
    [row[1:] for row in PER_PHONE], ids=[row[0] for row in PER_PHONE],
)  # fmt: skip
def test_a_per_phone_code(harness, answer, on_unknown, state, attempts, error_code, counters, opted_out, pause):
    _check(run_one(harness(answer), on_unknown=on_unknown), state, attempts, error_code, counters, opted_out, pause)


@pytest.mark.parametrize(
    ("exc", "on_unknown", "state", "attempts", "error_code", "counters", "opted_out", "pause"),
    [row[1:] for row in RAISED], ids=[row[0] for row in RAISED],
)  # fmt: skip
def test_an_exception_of_the_client(
    harness, exc: LightSmsError, on_unknown, state, attempts, error_code, counters, opted_out, pause
):
    _check(run_one(harness(raising(exc)), on_unknown=on_unknown), state, attempts, error_code, counters, opted_out,
           pause)  # fmt: skip


@pytest.mark.parametrize(
    "answer", [raising(ConnectError("refused")), coded(6), raising(AmbiguousError("read timeout"))],
    ids=["connect", "signature", "ambiguous-resend"],
)  # fmt: skip
def test_a_retry_with_its_budget_spent_is_dead(harness, answer):
    got = run_one(harness(answer), on_unknown="resend", attempts=MAX_ATTEMPTS - 1)
    assert (got["state"], got["attempts"], got["counters"]) == (State.DEAD, MAX_ATTEMPTS, {"dead": "1"})
    assert not got["due"]


def test_an_account_problem_does_not_spend_the_budget(harness):
    got = run_one(harness(coded(32)), attempts=MAX_ATTEMPTS - 1)
    assert (got["state"], got["attempts"]) == (State.DEFERRED, MAX_ATTEMPTS - 1)


def test_an_accepted_phone_records_id_cost_and_parts(harness):
    h = harness(lambda phones: [accepted(p, cost=Decimal("0.0288"), parts=2) for p in phones])
    [message_id] = h.enqueue([PHONE])
    h.sender.run([message_id])
    [message] = h.store.get_many([message_id])
    assert message is not None
    assert (message.id_sms, message.cost, message.parts) == (f"9{PHONE}", "0.0288", 2)
    assert h.stats.read()["parts"] == "2"
