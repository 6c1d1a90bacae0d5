"""Turn each message's outcome into its next state, per the outcome table of DESIGN.md."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from core.message import Message
from core.states import OnUnknown, State
from core.store import Move
from lightsms.codes import CLOCK_CODES, Outcome
from lightsms.models import PhoneResult

from .policy import RetryPolicy
from .status_schedule import first_check

# A reply that comes after its lease ran out (and the sweeper made the message UNKNOWN) still tells
# the truth: these outcomes replace UNKNOWN, for the same lease only. Nothing else moves it.
LATE_TRUTHS = frozenset({State.SENT, State.FAILED, State.SUPPRESSED})


@dataclass
class Plan:
    """The moves for one batch, and what else follows from them once they are applied."""

    moves: list[Move] = field(default_factory=list)  # each with its stats counter, counted as it is made
    opt_outs: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # counted with the moves, whatever they do (waits)
    cost: Decimal = Decimal(0)
    parts: int = 0
    price_per_part: Decimal | None = None  # the last accepted phone's cost / parts, when both were read
    pause: tuple[int | None, str] | None = None  # an account problem: (code, meaning), to pause everyone


class OutcomePlanner:
    def __init__(self, *, policy: RetryPolicy, record_ttl: int, lease: str, status_schedule: Sequence[float]) -> None:
        self.policy = policy
        self.record_ttl = record_ttl
        self.lease = lease
        self.status_schedule = status_schedule  # seconds after sending: when a SENT message's status is asked
        self.plan = Plan()

    def result(self, message: Message, result: PhoneResult) -> None:
        if result.outcome is Outcome.OK:
            sent_at = time.time()
            sent: dict[str, object] = {
                "id_sms": result.id_sms or "",
                "cost": "" if result.cost is None else result.cost,
                "parts": "" if result.parts is None else result.parts,
                # Fields LightSMS sent but we could not read: the phone was accepted all the same.
                "unreadable": ",".join(result.unreadable),
                "error_code": "0",
                "error_meaning": "",
                "sent_at": sent_at,
            }
            # Computed before anything is added: a result that breaks this adds nothing half-way.
            cost, parts = self.plan.cost + (result.cost or 0), self.plan.parts + (result.parts or 0)
            price = result.cost / result.parts if result.cost is not None and result.parts else self.plan.price_per_part
            # Due for its first status check at the schedule's first point after sending.
            due = first_check(sent_at, self.status_schedule)
            self._add(message, State.SENT, "sent", sent, ttl=self.record_ttl, score=due)
            self.plan.cost, self.plan.parts, self.plan.price_per_part = cost, parts, price
        elif result.code is None:
            # No readable code for this phone (absent, or nonsense): held UNKNOWN whatever on_unknown
            # says, since the phone may well have been accepted.
            self.unknown(message, {"error_code": "unreadable", "error_meaning": result.meaning}, hold=True)
        elif result.outcome is Outcome.NOT_SENT and result.code not in CLOCK_CODES:
            # Only a refused signature proves a phone was not sent; another "not sent" code under a
            # phone key (18 belongs to status.php) proves nothing about a send.
            self.unknown(message, {"error_code": str(result.code), "error_meaning": result.meaning})
        else:
            self.failure(message, result.outcome, code=result.code, meaning=result.meaning)

    def account_problem(self, message: Message, *, code: int | None, meaning: str, until: float) -> None:
        """The account cannot send: wait, without spending the budget, and pause everyone."""
        self.plan.pause = (code, meaning)
        self.defer(message, until=until, reason=meaning)

    def failure(self, message: Message, outcome: Outcome, *, code: int | str | None, meaning: str) -> None:
        error: dict[str, object] = {"error_code": "" if code is None else str(code), "error_meaning": meaning}
        if outcome is Outcome.PERMANENT:
            self._add(message, State.FAILED, f"failed:{code}", error, ttl=self.record_ttl)
        elif outcome is Outcome.SUPPRESSION:
            self._add(message, State.SUPPRESSED, "suppressed", error, ttl=self.record_ttl)
            self.plan.opt_outs.append(message.phone)
        elif outcome is Outcome.NOT_SENT:
            self.retry_later(message, error)
        else:  # AMBIGUOUS, and anything LightSMS says that proves nothing (19 to a send)
            self.unknown(message, error)

    def unknown(self, message: Message, error: dict[str, object], *, hold: bool = False) -> None:
        """UNKNOWN, or queued again when the message allows resending (and `hold` does not forbid it)."""
        if message.on_unknown == OnUnknown.RESEND and not hold:
            self.retry_later(message, error)
        else:
            self._add(message, State.UNKNOWN, "unknown", {**error, "attempts": message.attempts + 1}, score=time.time())

    def retry_later(self, message: Message, error: dict[str, object]) -> None:
        attempts = message.attempts + 1
        if self.policy.spent(attempts):
            reason = f"retry budget spent after {attempts} attempts: {error.get('error_meaning', '')}"
            self._add(message, State.DEAD, "dead", {**error, "attempts": attempts, "reason": reason}, score=time.time())
        else:
            due = time.time() + self.policy.backoff(attempts)
            self._add(message, State.DEFERRED, "deferred", {**error, "attempts": attempts}, score=due)

    def defer(self, message: Message, *, until: float, reason: str) -> None:
        """Wait without spending the retry budget (rate limit, paused account)."""
        self._add(message, State.DEFERRED, "", {"reason": reason}, score=until)

    def _add(
        self, message: Message, state: State, counter: str, fields: dict[str, object], *, ttl: int = 0,
        score: float = 0.0,
    ) -> None:  # fmt: skip
        # The lease stays on an UNKNOWN record: a reply that arrives after the sweeper gave up on it
        # proves, by the lease, that it belongs to this very attempt (see LATE_TRUTHS).
        fields = {**fields, "inflight": "0"} if state is State.UNKNOWN else {**fields, "lease": "", "inflight": "0"}
        allowed = (State.SENDING, State.UNKNOWN) if state in LATE_TRUTHS else (State.SENDING,)
        self.plan.moves.append(
            Move(message.id, allowed, state, score=score, lease=self.lease, ttl=ttl, fields=tuple(fields.items()),
                 counter=counter)
        )  # fmt: skip
