"""The message store: records in Redis hashes, every state change an atomic compare-and-set."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from . import keys
from .message import Message
from .redis_client import reply_text
from .states import Priority, State

log = logging.getLogger("lightsms_queue.store")
MOVES_PER_CALL = 100  # transition.lua moves per script call
# The in-flight mark claim.lua writes; every attempt_mark is later (see end_attempt.lua).
CLAIM_MARK = "0"


def attempt_mark() -> str:
    """A new attempt's in-flight mark, later than every mark made before it under the same lease (a
    lease is held by one process, whose monotonic clock only goes forward): twenty digits, so that
    Lua compares them as text in the order they were made."""
    return f"{time.monotonic_ns():020d}"



INCLUDE = "--! include "


def load_script(name: str) -> str:
    """A Lua script from core/lua, the one folder that holds them all (the limiter's too), after the
    files its `--! include <file>` lines name (code that two scripts share)."""
    text = resources.files("core").joinpath("lua", name).read_text(encoding="utf-8")
    included = [load_script(line[len(INCLUDE) :].strip()) for line in text.splitlines() if line.startswith(INCLUDE)]
    return "\n".join([*included, text])


def slot_reply(raw: object) -> tuple[float, float]:
    """A slot as the scripts answer it (reserve_slot.lua's slot_reply): the seconds to wait for it
    (negative: none was near enough, minus the distance to the next free one), and the Redis TIME,
    in seconds, that wait counts from."""
    wait_us, _, now_us = reply_text(raw).partition(":")
    return int(wait_us) / 1_000_000, int(now_us) / 1_000_000


class NoFreeSlot(Exception):
    """Store.begin_send was asked to take a rate-limit slot with the in-flight mark and none is free
    now: nothing was marked or reserved; the next free slot is `seconds` away."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no free rate-limit slot for {seconds:g} s")
        self.seconds = seconds


class TasksNotPushed(Exception):
    """Store.create stored its messages (`results`, as it returns them) but could not push the tasks
    it was given: the caller publishes them another way."""

    def __init__(self, results: list[tuple[str, bool]]) -> None:
        super().__init__("messages stored; their tasks could not be pushed")
        self.results = results


@dataclass(frozen=True, slots=True)
class Slot:
    """A slot of the global rate limit to take with the in-flight mark (begin_send.lua, claim.lua)."""

    key: str
    interval_us: int

    def args(self, max_wait: float) -> list[int]:
        """What the scripts take for it: the interval and the longest wait, in microseconds."""
        return [self.interval_us, int(max_wait * 1_000_000)]


@dataclass(frozen=True, slots=True)
class WindowEntry:
    """A place in the arrival window (core/arrival_window.py) to enter with a claim's slot (claim.lua),
    as window_enter.lua takes it."""

    key: str
    limit: int
    member: str
    bound_us: int
    width_us: int

    def args(self) -> list[int | str]:
        return [self.limit, self.member, self.bound_us, self.width_us]


@dataclass(frozen=True, slots=True)
class PlacesEnded:
    """Places in the arrival window whose requests' replies came, ended with the outcome's moves
    (transition.lua)."""

    key: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Claim:
    """What Store.claim_to_send found: the messages now SENDING under the lease, the ids among them
    whose phone is opted out (the STOP confirmation aside), and the ids claimed whose records cannot
    be read; and the pause (its raw record) when the account is paused: then nothing new was
    claimed, and `messages` are only those the lease already held (a claim run again)."""

    pause: str | None = None
    messages: tuple[Message, ...] = ()
    opted_out: frozenset[str] = frozenset()
    unreadable: tuple[str, ...] = ()
    # Asked with a slot: the seconds to wait for the slot taken, every message marked in flight; or,
    # when no slot was near enough, how far the next free one is (nothing taken, nothing marked).
    marked_wait: float | None = None
    next_slot_in: float | None = None


class RecipientOptedOut(Exception):
    """Store.create refused the whole call: the message at `index` is to an opted-out phone."""

    def __init__(self, index: int) -> None:
        super().__init__(f"message {index} is to an opted-out recipient")
        self.index = index


@dataclass(frozen=True, slots=True)
class Move:
    """One requested state change, applied by Store.apply."""

    message_id: str
    allowed: Sequence[State]
    to: State
    score: float = 0.0  # in the new state's index; 0 for SENT: now (its status is asked at the next poll)
    lease: str = ""  # when moving out of SENDING, the lease the mover must hold
    ttl: int = 0
    fields: tuple[tuple[str, object], ...] = ()
    when: tuple[str, str] = ("", "")  # a field and the value it must hold for the move
    expired_by: float | None = None  # out of SENDING only once the lease has run out by this time
    # The message's id_sms, for a move out of SENT: its id_sms map entry then takes the record's new
    # TTL. (A move to SENT that sets the id_sms field writes the entry without it.)
    id_sms: str = ""
    counter: str = ""  # a counter (core.stats) incremented with the move, when it is made


class Store:
    def __init__(self, client: redis.Redis, *, record_ttl: int) -> None:
        self.redis = client
        self.record_ttl = record_ttl
        self._create = client.register_script(load_script("create.lua"))
        self._transition = client.register_script(load_script("transition.lua"))
        self._claim = client.register_script(load_script("claim.lua"))
        self._pop_due = client.register_script(load_script("pop_due.lua"))
        self._begin_send = client.register_script(load_script("begin_send.lua"))
        self._end_attempt = client.register_script(load_script("end_attempt.lua"))
        self._purge = client.register_script(load_script("purge.lua"))
        self._end_status_checks = client.register_script(load_script("end_status_checks.lua"))

    def now(self) -> float:
        """Redis's clock: leases are compared across hosts whose own clocks may disagree."""
        seconds, micros = self.redis.time()
        return int(seconds) + int(micros) / 1_000_000

    # -- creating ------------------------------------------------------------------------------
    def create(
        self, messages: Sequence[Message], *, refuse_opted_out: bool = False, publish: Sequence[tuple[str, str]] = ()
    ) -> list[tuple[str, bool]]:
        """Store messages all or nothing, in one atomic script call (create.lua); (id, created) each, the
        existing id on a repeat.

        A repeat is an idempotency key that names a message still stored; a key whose message is
        gone (purged, expired) is taken by the new message. With `refuse_opted_out`, a message whose
        phone is on the opt-out list (unless it is the STOP confirmation) stores nothing at all and
        raises RecipientOptedOut naming the first such message. `publish`: (broker list, payload) pairs,
        their send tasks, pushed by the same call when every message is stored (see create.lua);
        TasksNotPushed when some were stored and the tasks were not pushed."""
        if not messages:
            return []
        script_keys: list[str] = [keys.OPT_OUT]
        records = [_stored_fields(message) for message in messages]
        shared = _alike(records)
        args: list[str | int | float] = [len(messages), keys.MESSAGE_PREFIX, len(shared)]
        for name, value in shared.items():
            args += [name, value]
        indexes: dict[tuple[bool, object], str] = {}  # a send_many's recipients share one
        for message, fields in zip(messages, records, strict=True):
            scheduled = message.state is State.SCHEDULED
            index = indexes.get((scheduled, message.priority))
            if index is None:
                index = keys.state_index(State.SCHEDULED if scheduled else State.QUEUED, message.priority)
                assert index is not None
                indexes[scheduled, message.priority] = index
            script_keys += [keys.message(message.id), keys.idempotency(message.idempotency_key or message.id), index]
            own = [item for pair in fields.items() if pair[0] not in shared for item in pair]
            screen = refuse_opted_out and not message.opt_out_confirmation
            args += [message.id, self.record_ttl if message.idempotency_key else 0, _first_score(message),
                     message.phone, "1" if screen else "0", len(own) // 2, *own]  # fmt: skip
        args.append(len(publish))
        for broker_list, payload in publish:
            script_keys.append(broker_list)
            args.append(payload)
        flat = self._create(keys=script_keys, args=args)
        if int(flat[0]) == -1:
            raise RecipientOptedOut(int(flat[1]) - 1)
        results = [(message.id, True) for message in messages]
        for i in range(1, len(flat), 2):
            results[int(flat[i]) - 1] = (reply_text(flat[i + 1]), False)
        if int(flat[0]) == 2:
            raise TasksNotPushed(results)
        return results

    def purge(self, messages: Sequence[Message]) -> list[tuple[bool, bool]]:
        """Delete DEAD messages for good, each atomically with its idempotency key when the key still
        names it; (purged, key released) each. A message that is no longer DEAD is left alone."""
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            idem_key = keys.idempotency(m.idempotency_key or m.id)
            args = [m.id, 1 if m.idempotency_key else 0]
            self._purge(keys=[keys.message(m.id), keys.state_index(State.DEAD), idem_key], args=args, client=pipe)
        return [(bool(int(purged)), bool(int(released))) for purged, released in pipe.execute()]

    # -- reading -------------------------------------------------------------------------------
    def get(self, message_id: str) -> Message | None:
        return _parse(self.redis.hgetall(keys.message(message_id)))

    def get_many(self, message_ids: Sequence[str]) -> list[Message | None]:
        pipe = self.redis.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.hgetall(keys.message(message_id))
        return [_parse(f) for f in pipe.execute()]

    def ids_in(self, index: str, *, upto: float = float("inf"), limit: int = 1000) -> list[str]:
        raw = self.redis.zrangebyscore(index, "-inf", upto, start=0, num=limit)
        return [reply_text(item) for item in raw]

    # -- changing ------------------------------------------------------------------------------
    def move(self, move: Move) -> tuple[bool, str]:
        return self.apply([move])[0]

    def apply(
        self, moves: Iterable[Move], *, amounts: Mapping[str, int] | None = None, ended: PlacesEnded | None = None
    ) -> list[tuple[bool, str]]:
        """Each move is atomic on its own; (moved, previous-or-current state) for each. Each move's
        counter is incremented with it, and `amounts` are added to the counters in the same call, and
        the `ended` places end (with the first chunk of moves; there must be a move).

        transition.lua gets the indexes of the allowed states and of the new one, each named by its
        state, and the id_sms map entry with a move to SENT that sets id_sms (see its header)."""
        moves = list(moves)
        amounts = {name: value for name, value in (amounts or {}).items() if value}
        ending = ended is not None and bool(ended.members)
        if ending and not moves:
            raise ValueError("places end with a move: with none, end them with the window itself")
        counting = bool(amounts) or any(m.counter for m in moves) or ending  # the places come after the counters
        now = time.time()
        moves_keys: list[list[str]] = []
        moves_args: list[list[str | int | float]] = []
        for m in moves:
            allowed = ",".join(m.allowed)
            expired_by = "" if m.expired_by is None else m.expired_by
            score = now if m.to is State.SENT and not m.score else m.score
            named = _named_indexes([*m.allowed, m.to])
            id_sms = m.id_sms or (str(dict(m.fields).get("id_sms") or "") if m.to is State.SENT else "")
            if id_sms:
                named["id_sms"] = keys.id_sms(id_sms)
            args: list[str | int | float] = [m.message_id, allowed, m.to.value, score, m.lease, m.ttl, now, *m.when,
                                             expired_by, *named]  # fmt: skip
            for name, value in m.fields:
                args += [name, "" if value is None else str(value)]
            moves_keys.append([keys.message(m.message_id), *named.values()])
            moves_args.append(args)
        # Many moves to one script call (each still atomic on its own), in chunks so that no one call
        # keeps Redis busy for long; the chunks in one round trip.
        calls: list[tuple[list[str], list[str | int | float]]] = []
        for start in range(0, len(moves_keys), MOVES_PER_CALL):
            chunk = slice(start, start + MOVES_PER_CALL)
            chunk_keys, chunk_args = moves_keys[chunk], moves_args[chunk]
            header: list[str | int | float] = [len(chunk_keys)]
            for move_keys, move_args in zip(chunk_keys, chunk_args, strict=True):
                header += [len(move_keys), len(move_args)]
            call_keys = [k for ks in chunk_keys for k in ks]
            call_args = header + [v for vs in chunk_args for v in vs]
            if counting:  # the counters' trailer (see transition.lua); the amounts with the first chunk
                added = amounts if start == 0 else {}
                call_keys.append(keys.STATS)
                call_args += [m.counter for m in moves[chunk]]
                call_args.append(len(added))
                for name, value in added.items():
                    call_args += [name, value]
                if ending and start == 0:
                    assert ended is not None
                    call_keys.append(ended.key)
                    call_args += [len(ended.members), *ended.members]
            calls.append((call_keys, call_args))
        flat = [value for result in self._run_script(self._transition, calls) for value in result]
        return [(bool(int(flat[i])), reply_text(flat[i + 1])) for i in range(0, len(flat), 2)]

    def _run_script(self, script: Script, calls: list[tuple[list[str], list[str | int | float]]]) -> list:
        """Run one script for each (keys, args), in one round trip, by its SHA only: redis-py's pipeline
        would ask SCRIPT EXISTS first every time. A call Redis answers NOSCRIPT (a restarted Redis, a
        SCRIPT FLUSH) ran nothing, so it is run again once the script is loaded; any other error is
        raised, as pipe.execute() would, once every call has been answered."""
        if len(calls) == 1:
            script_keys, args = calls[0]
            return [script(keys=script_keys, args=args)]  # redis-py loads it on NOSCRIPT itself
        results = self._evalsha_all(script, calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            self.redis.script_load(script.script)
            for i, result in zip(missing, self._evalsha_all(script, [calls[i] for i in missing]), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _evalsha_all(self, script: Script, calls: list[tuple[list[str], list[str | int | float]]]) -> list:
        pipe = self.redis.pipeline(transaction=False)
        for script_keys, args in calls:
            pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
        return list(pipe.execute(raise_on_error=False))

    def end_status_checks(
        self, message_id: str, polled: Sequence[State], note: Mapping[str, object] | None = None
    ) -> bool:
        """Out of the status-due index, left in its state (end_status_checks.lua): with a `note`, a
        message still in a `polled` state is given up on and gets the note's fields (True); without
        one, only a stale entry goes (its message gone or in another state)."""
        args: list[str | float] = [message_id, ",".join(polled), time.time()]
        for name, value in (note or {}).items():
            args += [name, "" if value is None else str(value)]
        index = keys.state_index(State.SENT)
        return bool(int(self._end_status_checks(keys=[keys.message(message_id), index], args=args)))

    def claim(self, message_ids: Sequence[str], *, lease: str, lease_seconds: float) -> list[Message]:
        """Move QUEUED messages to SENDING under `lease` (claim.lua), in one round trip; the records
        that hold the lease now, read in the same script, in the order asked. A message already
        SENDING under this same lease is returned too: a claim that ran again after its reply was
        lost gives back what the first one took."""
        return list(self._claim_call(message_ids, lease=lease, lease_seconds=lease_seconds, extra={}).messages)

    def claim_to_send(
        self, message_ids: Sequence[str], *, lease: str, lease_seconds: float, pause_key: str,
        slot: Slot | None = None, max_wait: float = 0.0, place: WindowEntry | None = None,
    ) -> Claim:  # fmt: skip
        """Store.claim unless the account is paused (`pause_key` exists: nothing is claimed), the
        claimed messages whose phone is on the opt-out list flagged: all in one round trip. With a
        `slot`, also begin_send's work when every message claimed would be sent as it is and a slot
        is at most `max_wait` away: Claim.marked_wait (see claim.lua). With a `place` too, only if the
        arrival window has room, and the place is entered with the slot (else it is not there)."""
        extra = {"PAUSE": pause_key, "OPTOUT": keys.OPT_OUT}
        tail: list[int | str] = []
        if slot is not None:
            extra["SLOT"] = slot.key
            tail += slot.args(max_wait)
            if place is not None:
                extra["WINDOW"] = place.key
                tail += place.args()
        return self._claim_call(message_ids, lease=lease, lease_seconds=lease_seconds, extra=extra, tail=tail)

    def _claim_call(
        self, message_ids: Sequence[str], *, lease: str, lease_seconds: float, extra: Mapping[str, str],
        tail: Sequence[int | str] = (),
    ) -> Claim:  # fmt: skip
        if not message_ids:
            return Claim()
        named = {**_named_indexes([State.QUEUED, State.SENDING]), **extra}
        hashes = [keys.message(i) for i in message_ids]
        args: list[str | float] = [lease, lease_seconds, len(message_ids), *message_ids, *named, *tail]
        reply = self._claim(keys=[*hashes, *named.values()], args=args)
        messages: list[Message] = []
        opted_out: set[str] = set()
        unreadable: list[str] = []
        marked_wait = next_slot_in = None
        if reply_text(reply[1]):
            wait, _ = slot_reply(reply[1])
            marked_wait, next_slot_in = (wait, None) if wait >= 0 else (None, -wait)
        for i in range(2, len(reply), 3):
            message_id, flag, flat = reply_text(reply[i]), reply_text(reply[i + 1]), reply[i + 2]
            message = _parse(dict(zip(flat[0::2], flat[1::2], strict=True)))
            if message is None or message.id != message_id:
                unreadable.append(message_id)
                continue
            messages.append(message)
            if flag == "1":
                opted_out.add(message_id)
        return Claim(reply_text(reply[0]) or None, tuple(messages), frozenset(opted_out), tuple(unreadable),
                     marked_wait=marked_wait, next_slot_in=next_slot_in)  # fmt: skip

    def begin_send(
        self, message_ids: Sequence[str], *, lease: str, lease_seconds: float, keep_if_left: float | None = None,
        mark: str | None = None,
    ) -> set[str]:  # fmt: skip
        """Mark messages in flight if they are still ours; the ids that may be sent. Their leases are
        renewed, unless each has more than `keep_if_left` seconds left (what the request may take).
        `mark`: the attempt's own (attempt_mark; a new one when not given), for end_attempt."""
        ours, _ = self._keep_lease(
            message_ids, lease=lease, lease_seconds=lease_seconds, mark=mark or attempt_mark(),
            keep_if_left=keep_if_left,
        )  # fmt: skip
        return ours

    def begin_send_in_slot(
        self, message_ids: Sequence[str], *, lease: str, lease_seconds: float, slot: Slot, max_wait: float,
        keep_if_left: float | None = None, mark: str | None = None,
    ) -> tuple[set[str], float]:  # fmt: skip
        """Store.begin_send and a slot of the rate limit at most `max_wait` seconds away, in one call:
        the ids that may be sent, and the seconds to wait for the slot before sending. NoFreeSlot
        (nothing marked or reserved) when no slot is that near."""
        return self._keep_lease(message_ids, lease=lease, lease_seconds=lease_seconds, mark=mark or attempt_mark(),
                                slot=slot, max_wait=max_wait, keep_if_left=keep_if_left)  # fmt: skip

    def end_attempt(self, message_ids: Sequence[str], *, lease: str, mark: str) -> int:
        """After a request that provably never reached LightSMS: clear the in-flight mark of the
        messages still SENDING under `lease` and marked with `mark` (CLAIM_MARK for a mark the claim
        made), see end_attempt.lua; how many were cleared."""
        if not message_ids:
            return 0
        return int(self._end_attempt(keys=[keys.message(i) for i in message_ids], args=[lease, mark]))

    def renew_lease(self, message_ids: Sequence[str], *, lease: str, lease_seconds: float) -> set[str]:
        """Renew the lease of messages still ours (not run out); the ids renewed."""
        ours, _ = self._keep_lease(message_ids, lease=lease, lease_seconds=lease_seconds, mark=None)
        return ours

    def _keep_lease(
        self, message_ids: Sequence[str], *, lease: str, lease_seconds: float, mark: str | None,
        slot: Slot | None = None, max_wait: float = 0.0, keep_if_left: float | None = None,
    ) -> tuple[set[str], float]:  # fmt: skip
        """begin_send.lua: with a `mark`, the in-flight mark; without, only the lease renewed."""
        script_keys = [*(keys.message(i) for i in message_ids), keys.state_index(State.SENDING)]
        keep = "" if keep_if_left is None else keep_if_left
        args: list[str | float] = [lease, lease_seconds, mark or "0", "", 0, keep]
        if slot is not None:
            script_keys.append(slot.key)
            args[3:5] = slot.args(max_wait)
        reply = self._begin_send(keys=script_keys, args=[*args, *message_ids])
        wait, _ = slot_reply(reply[0])
        if wait < 0:
            raise NoFreeSlot(-wait)
        return {reply_text(i) for i in reply[1:]}, wait

    def pop_due(self, *, now: float, limit: int) -> list[tuple[str, str]]:
        """Due SCHEDULED/DEFERRED messages moved to QUEUED: (id, priority) each."""
        queued = _named_indexes([State.QUEUED])
        flat = self._pop_due(keys=[keys.state_index(State.DEFERRED), *queued.values()],
                             args=[now, limit, keys.MESSAGE_PREFIX, *queued])  # fmt: skip
        items = [reply_text(item) for item in flat]
        return list(zip(items[0::2], items[1::2], strict=True))

    def touch_queued(self, message_ids: Sequence[str], priority: str, *, now: float) -> None:
        """Record that these QUEUED messages were just given a task again."""
        if message_ids:
            self.redis.zadd(keys.state_index(State.QUEUED, priority), dict.fromkeys(message_ids, now), xx=True)

    # -- opt-out list --------------------------------------------------------------------------
    def opt_out(self, phone: str) -> None:
        self.redis.sadd(keys.OPT_OUT, phone)

    def opt_in(self, phone: str) -> None:
        self.redis.srem(keys.OPT_OUT, phone)

    def opted_out(self, phones: Sequence[str]) -> set[str]:
        if not phones:
            return set()
        flags = self.redis.smismember(keys.OPT_OUT, list(phones))
        return {phone for phone, flag in zip(phones, flags, strict=True) if flag}


def _named_indexes(states: Iterable[State]) -> dict[str, str]:
    """The indexes of these states by the names the Lua scripts know them by: the state's name, and
    "QUEUED:<priority>" for each priority of QUEUED (a script picks one by the stored priority)."""
    named: dict[str, str] = {}
    for state in states:
        if state is State.QUEUED:
            named.update((f"QUEUED:{p.value}", keys.state_index(state, p)) for p in Priority)
        elif (index := keys.state_index(state)) is not None:
            named[state.value] = index
    return named


def _first_score(message: Message) -> float:
    """Its score in the index of its first state: when it is due (SCHEDULED), or when it was queued."""
    scheduled = message.send_at if message.state is State.SCHEDULED else None
    return scheduled or message.created_at


def _stored_fields(message: Message) -> dict[str, str]:
    fields = message.to_fields()
    if message.state is State.QUEUED:
        fields["queued_at"] = str(_first_score(message))
    return fields


def _alike(records: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The fields every record holds with the same value: create.lua gets them once for the call."""
    if len(records) < 2:
        return {}
    first, others = records[0], records[1:]
    return {name: value for name, value in first.items() if all(other.get(name) == value for other in others)}


def _parse(raw: dict) -> Message | None:
    """A record, or None when there is none or it cannot be read (logged: written by hand, perhaps)."""
    if not raw:
        return None
    fields = {reply_text(k): reply_text(v) for k, v in raw.items()}
    try:
        return Message.from_fields(fields)
    except (KeyError, ValueError) as exc:
        log.error("unreadable message record %s: %s: %s", fields.get("id", "?"), type(exc).__name__, exc)
        return None
