"""The send task's work: claim each batch under a lease, call send.php once, apply each outcome.

A message is sent only by the worker that moved it from QUEUED to SENDING itself and that still holds
its lease when the request starts (begin_send.lua); a task delivered twice, two workers racing, or a
worker that stalled past its lease find it taken and send nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from lightsms.codes import Outcome
from lightsms.errors import (
    AccountError,
    InvalidInput,
    LightSmsError,
    NotSentError,
    PermanentError,
    ThrottledError,
)
from lightsms.models import PhoneResult
from lightsms.phones import mask_phone, normalize_phone
from lightsms.validation import validate_sender, validate_text
from producers.message import Message
from producers.settings import Settings
from producers.states import State
from producers.stats import Stats
from producers.store import Move, Store

from .batching import plan_batches
from .limiter import RateLimiter
from .outcomes import OutcomePlanner, Plan, counts
from .pause import AccountCircuit
from .policy import RetryPolicy

log = logging.getLogger("lightsms_queue.send")
T = TypeVar("T")

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
TOO_MANY_PHONES = 14


class SendsSms(Protocol):
    def send(
        self, phones: Sequence[str], text: str, *, sender: str, sending_time: str | None = None
    ) -> list[PhoneResult]: ...


class RateLimited(Exception):
    """No limiter slot within the wait we allow: the batch is deferred, not failed."""


@dataclass
class BatchSender:
    settings: Settings
    store: Store
    stats: Stats
    client: SendsSms
    limiter: RateLimiter
    circuit: AccountCircuit
    sleep: Callable[[float], None] = time.sleep

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)

    @property
    def record_ttl(self) -> int:
        return int(self.settings.lightsms_record_ttl_days * 86400)

    def run(self, message_ids: Sequence[str]) -> None:
        found = [m for m in self.store.get_many(message_ids) if m is not None and m.state is State.QUEUED]
        sendable = self._screen(found)
        for batch in plan_batches(sendable, size=self.settings.lightsms_batch_size):
            self._send_batch(batch)

    # -- before sending ------------------------------------------------------------------------
    def _screen(self, messages: list[Message]) -> list[Message]:
        """Finish what must not be sent (expired, opted out, invalid) and return the rest."""
        now = time.time()
        opted = self.store.opted_out([m.phone for m in messages])
        finish: list[Move] = []
        sendable: list[Message] = []
        for m in messages:
            refusal = self._refusal(m, now=now, opted_out=m.phone in opted)
            if refusal is None:
                sendable.append(m)
                continue
            state, code, meaning = refusal
            finish.append(
                Move(m.id, (State.QUEUED,), state, ttl=self.record_ttl,
                     fields=(("error_code", code), ("error_meaning", meaning)))
            )  # fmt: skip
        if finish:
            moved = [ok for ok, _ in self._durably(lambda: self.store.apply(finish))]
            counter = {State.FAILED: "failed:local", State.SUPPRESSED: "suppressed"}
            self.stats.record({counter[mv.to]: 1 for mv, ok in zip(finish, moved, strict=True) if ok})
        return sendable

    def _refusal(self, m: Message, *, now: float, opted_out: bool) -> tuple[State, str, str] | None:
        if m.valid_until is not None and now > m.valid_until:
            return State.FAILED, "expired", "valid_for elapsed before it could be sent"
        if opted_out:
            return State.SUPPRESSED, "opted_out", "the recipient opted out locally"
        try:  # records written without this package's producer are checked here too
            if normalize_phone(m.phone) != m.phone:
                raise InvalidInput("phone", "not in digits-only international form")
            validate_text(m.text, max_parts=self.settings.lightsms_max_parts)
            validate_sender(m.sender)
        except InvalidInput as exc:
            return State.FAILED, "invalid", str(exc)
        return None

    # -- one batch -----------------------------------------------------------------------------
    def _send_batch(self, batch: list[Message]) -> None:
        pause = self.circuit.current()
        if pause is not None:
            self._defer_waiting(batch, until=self._recheck_at(pause.until), reason=f"paused: {pause.reason}")
            return
        lease = uuid.uuid4().hex
        claimed = self._claim(batch, lease)
        if not claimed:
            return
        planner = OutcomePlanner(policy=self.policy, record_ttl=self.record_ttl, lease=lease)
        self._send_into(planner, claimed, lease)
        self._apply(planner.plan)
        if planner.plan.pause is not None:  # after the results are safe: a Redis blip here loses nothing
            code, meaning = planner.plan.pause
            self._durably(lambda: self._pause(code, meaning))

    def _claim(self, batch: list[Message], lease: str) -> list[Message]:
        lease_until = self.store.now() + self.settings.lightsms_lease_seconds
        moves = [
            Move(m.id, (State.QUEUED,), State.SENDING, score=lease_until,
                 fields=(("lease", lease), ("lease_until", lease_until), ("inflight", "0")))
            for m in batch
        ]  # fmt: skip
        results = self._durably(lambda: self.store.apply(moves))
        ids = [m.id for m, (ok, _) in zip(batch, results, strict=True) if ok]
        # Read again now that they are ours: a duplicate task may have read them before another
        # attempt changed them (attempts, above all).
        fresh = self._durably(lambda: self.store.get_many(ids))
        return [m for m in fresh if m is not None and m.state is State.SENDING and m.lease == lease]

    def _send_into(self, planner: OutcomePlanner, claimed: list[Message], lease: str) -> None:
        try:
            sent, results = self._call(claimed, lease)
        except RateLimited:
            for m in claimed:
                planner.defer(m, until=time.time() + 1.0, reason="waiting for the rate limit")
        except PermanentError as exc:
            if exc.code == TOO_MANY_PHONES and len(claimed) > 1:
                # LightSMS's batch limit is lower than configured: nothing was sent, try halves.
                half = len(claimed) // 2
                self._send_into(planner, claimed[:half], lease)
                self._send_into(planner, claimed[half:], lease)
            else:
                self._plan_error(planner, claimed, exc)
        except LightSmsError as exc:
            self._plan_error(planner, claimed, exc)
        else:
            for m, result in zip(sent, results, strict=True):
                if result.outcome is Outcome.ACCOUNT:
                    planner.account_problem(m, code=result.code, meaning=result.meaning, until=self._recheck_at(None))
                else:
                    planner.result(m, result)

    def _call(self, claimed: list[Message], lease: str) -> tuple[list[Message], list[PhoneResult]]:
        """send.php once per attempt; tenacity retries only what provably never reached LightSMS."""
        first = claimed[0]
        sending = claimed
        begun = False
        retrying = Retrying(
            retry=retry_if_exception_type(NotSentError),
            stop=stop_after_delay(self.settings.lightsms_retry_window),
            wait=self._wait_between_attempts(),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if not self.limiter.acquire(max_wait=self.settings.lightsms_limiter_max_wait):
                    raise RateLimited()
                if not begun:
                    sending, begun = self._begin(claimed, lease), True
                if not sending:
                    return [], []
                phones = [m.phone for m in sending]
                return sending, self.client.send(
                    phones, first.text, sender=first.sender, sending_time=first.sending_time
                )
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _wait_between_attempts(self) -> Callable[[RetryCallState], float]:
        """Exponential backoff with jitter, or LightSMS's Retry-After when it asks for longer."""
        backoff = wait_exponential(multiplier=0.25, max=2.0) + wait_random(0, 0.25)
        window = self.settings.lightsms_retry_window

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome is not None else None
            asked = failure.retry_after if isinstance(failure, ThrottledError) and failure.retry_after else 0.0
            return max(backoff(state), min(asked, window))

        return wait

    def _begin(self, claimed: list[Message], lease: str) -> list[Message]:
        """The claimed messages still ours, now marked in flight (see begin_send.lua)."""
        seconds = self.settings.lightsms_lease_seconds
        ours = self._durably(lambda: self.store.begin_send([m.id for m in claimed], lease=lease, lease_seconds=seconds))
        if len(ours) < len(claimed):
            log.error(
                "%d message(s) were taken from this worker (lease ran out) before sending", len(claimed) - len(ours)
            )
        return [m for m in claimed if m.id in ours]

    def _plan_error(self, planner: OutcomePlanner, claimed: list[Message], exc: LightSmsError) -> None:
        log.warning("send of %d message(s) failed: %s: %s", len(claimed), type(exc).__name__, exc)
        for m in claimed:
            if isinstance(exc, AccountError):
                planner.account_problem(m, code=exc.code, meaning=exc.message, until=self._recheck_at(None))
            else:
                planner.failure(m, exc.outcome, code=exc.code if exc.code is not None else type(exc).__name__,
                                meaning=exc.message)  # fmt: skip

    # -- after sending -------------------------------------------------------------------------
    def _apply(self, plan: Plan) -> None:
        results = self._durably(lambda: self.store.apply(plan.moves))
        moved = [ok for ok, _ in results]
        for move, ok in zip(plan.moves, moved, strict=True):
            if not ok:
                log.error("message %s changed under our lease; not moved to %s", move.message_id, move.to)
        self._durably(lambda: self.stats.record(counts(plan, moved), cost=plan.cost, parts=plan.parts))
        for phone in plan.opt_outs:
            self._durably(lambda p=phone: self.store.opt_out(p))  # type: ignore[misc]
            log.info("recipient %s is on a LightSMS stop list: opted out locally", mask_phone(phone))

    def _defer_waiting(self, batch: list[Message], *, until: float, reason: str) -> None:
        moves = [Move(m.id, (State.QUEUED,), State.DEFERRED, score=until, fields=(("reason", reason),))
                 for m in batch]  # fmt: skip
        self._durably(lambda: self.store.apply(moves))

    def _pause(self, code: int | None, meaning: str) -> None:
        pause = self.circuit.pause(reason=meaning, code=code, seconds=self.settings.lightsms_pause_seconds)
        log.error("account problem (%s): sending paused for every worker until %.0f", meaning, pause.until)

    def _recheck_at(self, until: float | None) -> float:
        recheck = time.time() + self.settings.lightsms_pause_recheck
        return recheck if until is None else min(until, recheck)

    def _durably(self, operation: Callable[[], T]) -> T:
        """Redis writes around a send must survive a Redis restart: retry them for a while."""
        for attempt in Retrying(
            retry=retry_if_exception_type(REDIS_ERRORS),
            stop=stop_after_delay(60),
            wait=wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.2),
            sleep=self.sleep,
            reraise=True,
        ):
            with attempt:
                return operation()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
