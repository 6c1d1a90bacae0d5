"""The send task's work: claim each batch under a lease, call send.php once, apply each outcome.

A message is sent only by the worker that moved it from QUEUED to SENDING itself and that still holds
its lease when the request starts (begin_send.lua); a task delivered twice, two workers racing, or a
worker that stalled past its lease find it taken and send nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
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

from core.arrival_window import ArrivalWindow, WindowFullError
from core.message import Message
from core.pause import AccountCircuit, Pause
from core.settings import Settings
from core.states import State
from core.stats import Stats, amounts
from core.store import CLAIM_MARK, Move, NoFreeSlot, Slot, Store, WindowEntry, attempt_mark
from lightsms.codes import SPLIT_CODES, Outcome
from lightsms.errors import (
    AccountError,
    InvalidInput,
    LightSmsError,
    NotSentError,
    ThrottledError,
)
from lightsms.models import PhoneResult
from lightsms.phones import mask_phone, normalize_phone
from lightsms.validation import validate_sender, validate_text

from .batching import plan_batches
from .leases import LeaseKeeper
from .limiter import RateLimiter, SlotTaken, wait_counts
from .outcomes import OutcomePlanner, Plan
from .policy import RetryPolicy

log = logging.getLogger("lightsms_queue.send")
T = TypeVar("T")

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
# Redis calls around a send are retried this long (a restart with AOF takes seconds); past that the
# lease and the sweeper take over.
REDIS_PATIENCE = 60.0
# A Retry-After longer than this is not believed to the letter: the message waits at most a day.
LONGEST_ASKED_WAIT = 86400.0
# A rate-limit slot this near is taken with the in-flight mark, in one call, and waited for after it:
# the mark leads its request by no more than this. A further slot is waited for until MARK_LEAD
# before it, then the mark is made.
SLOT_WITH_MARK = 0.02
# Behind a backlog, the mark is made this long before the slot, not after it: its round trip, and a
# thread waiting for the GIL meanwhile, do not make the request late (the limiter's LATE).
MARK_LEAD = 0.01
# The arrival window could not be asked (Redis not answering): the batch is deferred this long.
WINDOW_UNCHECKED_WAIT = 1.0
REQUEST_ROOM = 5.0  # seconds of lease beyond a request's deadline, as the settings require


class SendsSms(Protocol):
    def ready(self) -> None: ...

    def send(
        self, phones: Sequence[str], text: str, *, sender: str, sending_time: str | None = None,
        phones_checked: bool = False,
    ) -> list[PhoneResult]: ...  # fmt: skip


class RateLimited(Exception):
    """No limiter slot within the wait we allow: the batch is deferred, not failed, until the next
    free slot (`seconds` from now) rather than a fixed second, so that it comes back when it can go."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no rate-limit slot for {seconds:g} s")
        self.seconds = seconds


class AskedToWait(Exception):
    """LightSMS asked (Retry-After) for a longer wait than the retry window has left: nothing was
    sent, and waiting is not a failure, so the batch is deferred without spending its budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"LightSMS asked to wait {seconds:g} s")
        self.seconds = min(seconds, LONGEST_ASKED_WAIT)


@dataclass
class BatchSender:
    settings: Settings
    store: Store
    client: SendsSms
    limiter: RateLimiter
    circuit: AccountCircuit
    requeue: Callable[[Sequence[tuple[str, str]]], None]  # publish tasks for (id, priority) already QUEUED
    leases: LeaseKeeper | None = None  # renews the leases of the batch in hand (None: the lease must outlast it)
    window: ArrivalWindow | None = None  # the client's arrival window: a place is taken before each mark
    sleep: Callable[[float], None] = time.sleep
    _limiter_booked_until: float = field(default=0.0, init=False)  # monotonic; a hint shared by the threads

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)

    @property
    def _request_time(self) -> float:
        """Lease a request must have ahead of it, at the least: all it may take (the settings refuse a
        lease shorter than that), and room for a renewal missed in a Redis blip."""
        return self.settings.request_deadline + REQUEST_ROOM

    @property
    def record_ttl(self) -> int:
        return int(self.settings.lightsms_record_ttl_days * 86400)

    def run(self, message_ids: Sequence[str]) -> None:
        """Claim the task's messages (claim.lua also answers whether the account is paused and which
        phones are opted out: one round trip), finish those that must not go, send the rest in batches."""
        self.client.ready()  # LightSMS's clock, if due, before a slot is taken (with the claim, or later)
        lease = uuid.uuid4().hex
        # A task whose messages go in one send.php call takes its slot and in-flight mark with the claim
        # when it can (claim.lua checks they would be one call): one round trip fewer. Never for more:
        # a later call's messages would be in flight while the first one's request runs, and become
        # UNKNOWN, never sent, if the worker were lost meanwhile.
        one_call = len(message_ids) <= self.settings.lightsms_batch_size
        slot = self._slot() if one_call and not self._limiter_booked() else None
        with self._ends_kept():
            try:
                self._claim_and_send(message_ids, lease, slot)
            finally:
                self._release_place()  # a place taken for the claim's mark that no request used

    def _claim_and_send(self, message_ids: Sequence[str], lease: str, slot: Slot | None) -> None:
        seconds = self.settings.lightsms_lease_seconds
        # The claim enters the request's place in the arrival window with its slot and mark, only
        # when there is room: a batch is never marked to wait for room.
        place = self._offer_place() if slot is not None else None
        claim = self._durably(
            lambda: self.store.claim_to_send(
                message_ids, lease=lease, lease_seconds=seconds, pause_key=self.circuit.key, slot=slot,
                max_wait=SLOT_WITH_MARK, place=place,
            )
        )  # fmt: skip
        marked = self._slot_taken(claim.marked_wait) if claim.marked_wait is not None else None
        if marked is None and self.window is not None:
            self.window.forget_held()  # not entered (or taken out) by the claim: the send takes its own
        if claim.next_slot_in is not None:
            self._note_limiter_booked(claim.next_slot_in)
        if claim.pause is not None:
            pause = AccountCircuit.read(claim.pause)
            self._defer_waiting(message_ids, until=self._recheck_at(pause.until), reason=f"paused: {pause.reason}")
            if claim.messages:  # already ours: a claim run again after its reply was lost
                self._defer_claimed(list(claim.messages), lease, pause)
            return
        if claim.unreadable:
            self._finish_unreadable(claim.unreadable, lease)
        if not claim.messages:
            return
        claimed = list(claim.messages)
        holding = self.leases.holding(lease, [m.id for m in claimed]) if self.leases else nullcontext()
        with holding:
            sendable = self._screen(claimed, lease, claim.opted_out)
            batches = plan_batches(sendable, size=self.settings.lightsms_batch_size)
            for n, batch in enumerate(batches):
                try:
                    # the claim checked the pause for the first batch; a later one checks it again
                    if n == 0:
                        self._send_claimed(batch, lease, marked=marked)
                    elif not self._deferred_for_pause(batch, lease):
                        self._send_claimed(batch, lease)
                except BaseException as exc:
                    self._give_back([m for later in batches[n + 1 :] for m in later], lease, exc)
                    raise

    # -- before sending ------------------------------------------------------------------------
    def _screen(self, messages: list[Message], lease: str, opted_out: frozenset[str]) -> list[Message]:
        """Finish what must not be sent (expired, opted out, invalid) and return the rest."""
        now = time.time()
        finish: list[Move] = []
        sendable: list[Message] = []
        for m in messages:
            refusal = self._refusal(m, now=now, opted_out=m.id in opted_out)
            if refusal is None:
                sendable.append(m)
                continue
            state, code, meaning = refusal
            counter = {State.FAILED: "failed:local", State.SUPPRESSED: "suppressed"}[state]
            finish.append(
                Move(m.id, (State.SENDING,), state, lease=lease, ttl=self.record_ttl, counter=counter,
                     fields=(("lease", ""), ("inflight", "0"), ("error_code", code), ("error_meaning", meaning)))
            )  # fmt: skip
        if finish:
            self._durably(lambda: self.store.apply(finish))
        return sendable

    def _finish_unreadable(self, message_ids: Sequence[str], lease: str) -> None:
        """Claimed records that cannot be read (written by hand, perhaps) cannot be sent: FAILED, with
        why, rather than left SENDING for the sweeper to queue again and again."""
        log.error("%d claimed message record(s) cannot be read: FAILED, not sent", len(message_ids))
        meaning = "the message record cannot be read"
        moves = [Move(i, (State.SENDING,), State.FAILED, lease=lease, ttl=self.record_ttl, counter="failed:local",
                      fields=(("lease", ""), ("inflight", "0"), ("error_code", "unreadable"),
                              ("error_meaning", meaning)))
                 for i in message_ids]  # fmt: skip
        self._durably(lambda: self.store.apply(moves))

    def _refusal(self, m: Message, *, now: float, opted_out: bool) -> tuple[State, str, str] | None:
        if m.valid_until is not None and now > m.valid_until:
            return State.FAILED, "expired", "valid_for elapsed before it could be sent"
        # The STOP confirmation (opt_out_confirmation) is the one message an opted-out number still
        # gets: the router enqueues it as it records the opt-out, so it is screened after it.
        if opted_out and not m.opt_out_confirmation:
            return State.SUPPRESSED, "opted_out", "the recipient opted out locally"
        try:  # records written without this package's producer are checked here too
            # phonenumbers is the costliest check of all: not run again on what our producer checked
            if not m.phone_checked and normalize_phone(m.phone) != m.phone:
                raise InvalidInput("phone", "not in digits-only international form")
            validate_text(m.text, max_parts=self.settings.lightsms_max_parts)
            validate_sender(m.sender)
        except InvalidInput as exc:
            return State.FAILED, "invalid", str(exc)
        return None

    def _deferred_for_pause(self, batch: list[Message], lease: str) -> bool:
        """A batch after the first, claimed with it: deferred under its lease if the account is paused now."""
        pause = self._durably(self.circuit.current)
        if pause is None:
            return False
        self._defer_claimed(batch, lease, pause)
        return True

    def _defer_claimed(self, claimed: list[Message], lease: str, pause: Pause) -> None:
        until, reason = self._recheck_at(pause.until), f"paused: {pause.reason}"
        planner = self._planner(lease)
        for m in claimed:
            planner.defer(m, until=until, reason=reason)
        self._apply(planner.plan)

    def _give_back(self, claimed: list[Message], lease: str, failure: BaseException) -> None:
        """Claimed messages whose batch never started, after a failure that ends the task: queued again
        now, not left to the sweeper once their lease runs out."""
        if not claimed:
            return
        try:
            self._settle_unsettled(claimed, lease, failure)
        except Exception as exc:  # noqa: BLE001 - the lease and the sweeper will; the failure goes on
            log.error("claimed messages could not be given back (%s): the sweeper will", type(exc).__name__)

    def _planner(self, lease: str) -> OutcomePlanner:
        return OutcomePlanner(
            policy=self.policy, record_ttl=self.record_ttl, lease=lease, status_schedule=self.settings.status_schedule
        )

    def _send_claimed(self, claimed: list[Message], lease: str, *, marked: SlotTaken | None = None) -> None:
        """One send.php call for the claimed messages, its outcome applied before anything else
        happens; halves of a batch LightSMS found too large follow, each applied in its turn.
        `marked`: the claim marked them in flight and took this slot."""
        planner = self._planner(lease)
        failure: BaseException | None = None
        halves: list[list[Message]] = []
        try:
            halves = self._send_into(planner, claimed, lease, marked)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the claimed messages are settled first
            failure = exc
        # What is known is applied even after a failure: a phone LightSMS accepted stays SENT.
        self._apply(planner.plan)
        if failure is not None:
            self._settle_unsettled(claimed, lease, failure)
            if not isinstance(failure, Exception):
                raise failure  # a shutdown or a time limit: settled, now let it through
        for half in halves:
            self._send_claimed(half, lease)

    def _send_into(
        self, planner: OutcomePlanner, claimed: list[Message], lease: str, marked: SlotTaken | None
    ) -> list[list[Message]]:
        """Plan each claimed message's outcome; the halves to send next when LightSMS refused the
        batch as a whole for a reason one of its phones may cause (nothing was sent)."""
        in_request = list(claimed)  # narrowed by _call to what the request really carried
        try:
            sent, results = self._call(claimed, lease, in_request, planner.plan.counts, marked)
        except RateLimited as exc:
            until = time.time() + max(exc.seconds, 0.1)
            for m in in_request:
                planner.defer(m, until=until, reason="waiting for the rate limit")
        except AskedToWait as exc:
            asked = time.time() + exc.seconds
            if exc.seconds >= LONGEST_ASKED_WAIT:
                log.error("ALERT LightSMS asked to wait %g s (Retry-After): messages wait that long", exc.seconds)
            for m in in_request:
                until = asked if m.valid_until is None else min(asked, m.valid_until)
                planner.defer(m, until=until, reason=f"{exc} (Retry-After)")
        except LightSmsError as exc:
            if exc.code in SPLIT_CODES and len(in_request) > 1:
                # The whole request was refused for what may be one phone's fault (too many phones,
                # a stop-listed or invalid number): nothing was sent, so each half goes again.
                half = len(in_request) // 2
                return [in_request[:half], in_request[half:]]
            self._plan_error(planner, in_request, exc)
        else:
            for m, result in zip(sent, results, strict=True):
                try:
                    if result.outcome is Outcome.ACCOUNT:
                        until = self._recheck_at(None)
                        planner.account_problem(m, code=result.code, meaning=result.meaning, until=until)
                    else:
                        planner.result(m, result)
                except Exception as exc:  # noqa: BLE001 - one phone's odd result must not cost the others
                    planner.unknown(m, {"error_code": "unreadable", "error_meaning": type(exc).__name__}, hold=True)
        return []

    def _call(
        self, claimed: list[Message], lease: str, in_request: list[Message], waits: Counter[str],
        marked: SlotTaken | None,
    ) -> tuple[list[Message], list[PhoneResult]]:  # fmt: skip
        """send.php once per attempt; tenacity retries only what provably never reached LightSMS.

        Each attempt first confirms, in Redis, that the messages are still ours and marks them in
        flight (begin_send.lua): a worker that stalled past its lease between attempts sends nothing.
        The first attempt skips that when the claim, a moment ago, marked them and took the slot
        (`marked`). `in_request` is kept equal to the messages the latest attempt carried. The slot
        is waited for last, just before the request (the limiter's `keep`).
        """
        first = claimed[0]
        window = self.settings.lightsms_retry_window
        started = time.monotonic()
        marks = [CLAIM_MARK]  # each attempt's own in-flight mark, the latest last
        retrying = Retrying(
            retry=retry_if_exception_type(NotSentError),
            stop=stop_after_delay(window),
            wait=self._wait_between_attempts(),
            sleep=self.sleep,
            before_sleep=lambda _: self._between_attempts(in_request, lease, marks[-1]),
            reraise=True,
        )
        for attempt in retrying:
            with attempt, self._place_released():
                if marked is not None:
                    slot, marked = marked, None  # the first attempt only
                else:
                    marks.append(attempt_mark())
                    left = window - (time.monotonic() - started)
                    ours, slot = self._begin_with_slot(in_request, lease, left, waits, mark=marks[-1])
                    in_request[:] = ours
                waits.update(wait_counts(slot.wait))  # waited, whatever was found after it
                if not in_request:
                    return [], []
                # Marked in flight: only the wait, no Redis call (a stall there could outlast the lease).
                try:
                    self.limiter.sleep_until(slot.at, sleep=self.sleep)
                except BaseException:
                    self._end_attempt(in_request, lease, marks[-1])  # interrupted before the request: not sent
                    raise
                sending = list(in_request)
                try:
                    # every phone of the batch is as normalize_phone returns it: checked by the
                    # producer, or by the screen
                    return sending, self.client.send([m.phone for m in sending], first.text, sender=first.sender,
                                                     sending_time=first.sending_time, phones_checked=True)  # fmt: skip
                except WindowFullError as full:
                    # no room for a place taken after the mark (a re-sign, a stale place gone): nothing
                    # was written, and waiting for the limit is no failure
                    raise RateLimited(full.seconds) from None
                except ThrottledError as exc:
                    left = window - (time.monotonic() - started)
                    if exc.retry_after is not None and exc.retry_after > left:
                        raise AskedToWait(exc.retry_after) from None
                    raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _between_attempts(self, sending: list[Message], lease: str, mark: str) -> None:
        """Before the wait for the next attempt: the attempt's marks and places end now."""
        self._end_places()
        self._end_attempt(sending, lease, mark)

    def _end_attempt(self, sending: list[Message], lease: str, mark: str) -> None:
        """The request never reached LightSMS: the attempt's in-flight marks go before the wait for
        the next attempt, so that a worker lost during it leaves the messages to be queued again,
        not held UNKNOWN. Best effort: a mark left in place only costs that. The next attempt marks
        them with a mark of its own, which a late copy of this call cannot clear."""
        try:
            self.store.end_attempt([m.id for m in sending], lease=lease, mark=mark)
        except Exception as exc:  # noqa: BLE001 - the retry must go on; the next attempt marks them again
            log.warning("in-flight mark not cleared before the next attempt (%s)", type(exc).__name__)

    def _wait_between_attempts(self) -> Callable[[RetryCallState], float]:
        """Exponential backoff with jitter, or LightSMS's Retry-After when it asks for longer."""
        backoff = wait_exponential(multiplier=0.25, max=2.0) + wait_random(0, 0.25)

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome is not None else None
            asked = failure.retry_after if isinstance(failure, ThrottledError) and failure.retry_after else 0.0
            return max(backoff(state), asked)  # a longer ask than the window left was deferred instead

        return wait

    def _begin_with_slot(
        self, claimed: list[Message], lease: str, left: float, waits: Counter[str], *, mark: str
    ) -> tuple[list[Message], SlotTaken]:
        """A slot of the rate limit, and the claimed messages still ours marked in flight: in one call
        when a slot is free now (the common case), else just before the slot. A backlog behind the
        limit waits for its slot here, under the lease (renewed by the keeper), as long as the retry
        window has `left` and at most a third of a lease: it does not cycle through deferral, the due
        set and the queue for each missed slot. No slot even then: RateLimited. The slot itself is
        waited for by the caller, last."""
        slot = self._slot()
        seconds = self.settings.lightsms_lease_seconds
        ids = [m.id for m in claimed]
        # A booked limiter: go straight to waiting in line.
        if not self._limiter_booked() and self._place_now():
            try:
                ours, wait = self._durably(lambda: self.store.begin_send_in_slot(
                    ids, lease=lease, lease_seconds=seconds, slot=slot, max_wait=SLOT_WITH_MARK,
                    keep_if_left=self._request_time, mark=mark))  # fmt: skip
            except NoFreeSlot as busy:
                self._release_place()
                self._note_limiter_booked(busy.seconds)
            else:
                return self._still_ours(claimed, ours), self._slot_taken(wait)
        patience = max(0.0, min(left, self.settings.lightsms_lease_seconds / 3))
        within = max(self.settings.lightsms_limiter_max_wait, patience)
        ends = self.limiter.clock.now() + within
        try:
            taken = self._durably(lambda: self.limiter.take(within=within))
        except NoFreeSlot as full:
            waits["limiter_full"] += 1
            raise RateLimited(full.seconds) from None
        at = self.limiter.keep(taken.at, until=ends, lead=MARK_LEAD, counts=waits, sleep=self.sleep)
        room_within = max(self.settings.lightsms_limiter_max_wait, ends - self.limiter.clock.now())
        frees_in = self._take_place(patience=room_within)
        if frees_in is not None:
            waits["limiter_full"] += 1
            raise RateLimited(frees_in)
        return self._begin(claimed, lease, mark), SlotTaken(taken.wait, at)

    # -- the arrival window: a place before the mark, so that no marked batch waits for room ----
    def _take_place(self, *, patience: float) -> float | None:
        """A place in the window for this thread's next request, waiting for room up to `patience`
        (unmarked): None once taken, else the seconds until one frees."""
        if self.window is None:
            return None
        try:
            place = self.window.enter("send.php", patience=patience)
        except WindowFullError as full:
            return full.seconds
        except NotSentError:  # Redis not answering: the batch waits, unmarked, like one behind the limit
            return WINDOW_UNCHECKED_WAIT
        self.window.hold(place)
        return None

    def _offer_place(self) -> WindowEntry | None:
        """A place for a script to enter (the claim's), held for this thread's next request."""
        if self.window is None:
            return None
        place, entry = self.window.offer()
        self.window.hold(place)
        return entry

    @contextmanager
    def _ends_kept(self) -> Iterator[None]:
        """The places of this task's requests end with their outcomes' moves (see _apply)."""
        with self.window.ends_kept() if self.window is not None else nullcontext():
            yield

    def _end_places(self) -> None:
        """Places whose replies came, ended now: before a wait, not held through it."""
        if self.window is not None and (ended := self.window.take_ended()) is not None:
            self.window.end_now(ended)

    def _place_now(self) -> bool:
        """A place taken now, with no wait: else (no room, or Redis not answering) the slot and the
        mark are not taken together, and the send takes its place later, waiting for room."""
        return self._take_place(patience=0.0) is None

    def _release_place(self) -> None:
        if self.window is not None:
            self.window.release_held()

    @contextmanager
    def _place_released(self) -> Iterator[None]:
        """An attempt's place goes with it when its request did not use it."""
        try:
            yield
        finally:
            self._release_place()

    def _slot(self) -> Slot:
        return Slot(self.limiter.key, self.limiter.interval_us)

    def _limiter_booked(self) -> bool:
        """Known to be booked further ahead than SLOT_WITH_MARK (a backlog): a slot asked with the
        claim or the mark would only be refused."""
        return time.monotonic() < self._limiter_booked_until

    def _note_limiter_booked(self, next_slot_in: float) -> None:
        self._limiter_booked_until = time.monotonic() + next_slot_in - SLOT_WITH_MARK

    def _slot_taken(self, wait: float) -> SlotTaken:
        """A slot a script took with the mark, its reply read just now: waited for from this reading,
        not placed on the Redis clock as the limiter's own slots are. A marked batch cannot take
        another slot when it is late, so threads that read their replies late (a burst of them,
        contending for the GIL) would all go at once, together, where timed from their reading they
        keep their slots' spacing: `python -m bench limiter`, six runs each way, left a median of
        11 ms of room in the tightest second this way, 6.5 ms placed (and a 429 in two full runs)."""
        return SlotTaken(wait, self.limiter.clock.now() + wait)

    def _begin(self, claimed: list[Message], lease: str, mark: str) -> list[Message]:
        """The claimed messages still ours, now marked in flight (see begin_send.lua)."""
        seconds = self.settings.lightsms_lease_seconds
        ids = [m.id for m in claimed]
        keep = self._request_time
        ours = self._durably(
            lambda: self.store.begin_send(ids, lease=lease, lease_seconds=seconds, keep_if_left=keep, mark=mark)
        )
        return self._still_ours(claimed, ours)

    @staticmethod
    def _still_ours(claimed: list[Message], ours: set[str]) -> list[Message]:
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
        """The moves first; then each side effect on its own, so that one failing skips no other."""
        moved: list[bool] = []
        if plan.moves:
            spent = {**amounts(cost=plan.cost, parts=plan.parts), **plan.counts}
            # the places of the requests that came to this outcome end with it (one call, not two)
            ended = self.window.take_ended() if self.window is not None else None
            try:
                moved = [ok for ok, _ in self._durably(lambda: self.store.apply(plan.moves, amounts=spent,
                                                                                 ended=ended))]  # fmt: skip
            except BaseException as failure:
                if ended is not None and self.window is not None:
                    self.window.end_now(ended)  # best effort: else they hold room until their bounds
                if isinstance(failure, Exception):
                    # Redis stayed away longer than we wait: the lease and the sweeper take over. What
                    # LightSMS said must not be lost with it: the log keeps it for an operator.
                    for move in plan.moves:
                        fields = dict(move.fields)
                        log.error("not recorded: message %s -> %s id_sms=%s error_code=%s", move.message_id,
                                  move.to.value, fields.get("id_sms", ""), fields.get("error_code", ""))  # fmt: skip
                raise
        else:
            self._end_places()
            if plan.counts:
                # waits for a batch found not ours any more: counted all the same (they were waited),
                # as the limiter counts its own, once: a count lost to a Redis blip is no reason to wait
                with contextlib.suppress(redis.RedisError):
                    Stats(self.store.redis).record(plan.counts)
        for move, ok in zip(plan.moves, moved, strict=True):
            if not ok:
                log.error("message %s changed under our lease; not moved to %s", move.message_id, move.to)
        for phone in plan.opt_outs:
            self._side_effect("an opt-out", lambda p=phone: self.store.opt_out(p))  # type: ignore[misc]
            log.info("recipient %s is on a LightSMS stop list: opted out locally", mask_phone(phone))
        if plan.price_per_part is not None:
            price = plan.price_per_part
            self._side_effect("the price", lambda: self.circuit.record_price(price))
        if plan.pause is not None:
            code, meaning = plan.pause
            self._side_effect("the account pause", lambda: self._pause(code, meaning))

    def _settle_unsettled(self, claimed: list[Message], lease: str, failure: BaseException) -> None:
        """After an unexpected failure: a claimed message whose request never started is queued
        again; one whose request may have been written is UNKNOWN, whatever its on_unknown (its
        reply was lost in our own failure, and resending could send it twice). Messages already
        settled keep their state: each move requires the lease and the in-flight flag."""
        name = type(failure).__name__
        meaning = f"the worker failed ({name}) after the request may have reached LightSMS"
        now = time.time()
        moves: list[Move] = []
        for m in claimed:
            moves.append(Move(m.id, (State.SENDING,), State.QUEUED, score=now, lease=lease, when=("inflight", "0"),
                              fields=(("lease", ""), ("queued_at", now))))  # fmt: skip
            moves.append(Move(m.id, (State.SENDING,), State.UNKNOWN, score=now, lease=lease, when=("inflight", "1"),
                              counter="unknown",
                              fields=(("inflight", "0"), ("attempts", m.attempts + 1), ("error_code", "worker_error"),
                                      ("error_meaning", meaning))))  # fmt: skip
        results = self._durably(lambda: self.store.apply(moves))
        priority = {m.id: m.priority for m in claimed}
        done = [mv for mv, (ok, _) in zip(moves, results, strict=True) if ok]
        requeued = [(mv.message_id, priority[mv.message_id]) for mv in done if mv.to is State.QUEUED]
        unknown = sum(1 for mv in done if mv.to is State.UNKNOWN)
        log.error("send failed unexpectedly (%s): %d message(s) queued again, %d UNKNOWN", name, len(requeued),
                  unknown)  # fmt: skip
        log.debug("the failure", exc_info=failure)
        if requeued:
            self._side_effect("queueing again", lambda: self.requeue(requeued))

    def _side_effect(self, what: str, operation: Callable[[], object]) -> None:
        try:
            self._durably(operation)
        except Exception as exc:  # noqa: BLE001 - logged; the next side effect must still happen
            log.error("%s could not be recorded after a send (%s)", what, type(exc).__name__)

    def _defer_waiting(self, message_ids: Sequence[str], *, until: float, reason: str) -> None:
        moves = [Move(i, (State.QUEUED,), State.DEFERRED, score=until, fields=(("reason", reason),))
                 for i in message_ids]  # fmt: skip
        self._durably(lambda: self.store.apply(moves))

    def _pause(self, code: int | None, meaning: str) -> None:
        pause = self.circuit.pause(reason=meaning, code=code, seconds=self.settings.lightsms_pause_seconds)
        log.error("ALERT account problem (%s): sending paused for every worker until %.0f", meaning, pause.until)

    def _recheck_at(self, until: float | None) -> float:
        now = time.time()
        recheck = now + self.settings.lightsms_pause_recheck
        # never in the past: a pause record whose `until` passed (written by hand) must not spin
        soonest = now + min(1.0, self.settings.lightsms_pause_recheck)
        return recheck if until is None else max(min(until, recheck), soonest)

    def _durably(self, operation: Callable[[], T]) -> T:
        """Redis calls around a send must survive a Redis restart: retry them for a while."""
        try:  # the hot path: tried once without building a Retrying for it
            return operation()
        except REDIS_ERRORS:
            pass
        for attempt in Retrying(
            retry=retry_if_exception_type(REDIS_ERRORS),
            stop=stop_after_delay(REDIS_PATIENCE),
            wait=wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.2),
            sleep=self.sleep,
            reraise=True,
        ):
            with attempt:
                return operation()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
