"""Every Redis key name the project uses, in one place."""

from __future__ import annotations

from typing import Literal, overload

from .states import Priority, State

PREFIX = "sms:"
MESSAGE_PREFIX = PREFIX + "msg:"

# Sorted sets indexing messages by state; the score is a unix time whose meaning is per index.
# QUEUED has one per priority (score: when it was last given a task), so the sweeper can tell a lost
# task from a backlog queue by queue. `state_index` is the one map from a state to its index.
PRIORITIES = tuple(priority.value for priority in Priority)  # high, normal, bulk
QUEUED_PREFIX = PREFIX + "idx:queued:"  # + priority
QUEUED_INDEXES = tuple(QUEUED_PREFIX + priority for priority in PRIORITIES)
SENDING_INDEX = PREFIX + "idx:sending"  # when its lease runs out
DUE_INDEX = PREFIX + "idx:due"  # when it is due (SCHEDULED, DEFERRED)
STATUS_DUE_INDEX = PREFIX + "idx:status_due"  # SENT, PARTLY_DELIVERED: when its delivery status is next asked
DEAD_INDEX = PREFIX + "idx:dead"  # when it died
UNKNOWN_INDEX = PREFIX + "idx:unknown"  # when it became UNKNOWN
INDEXES = (*QUEUED_INDEXES, SENDING_INDEX, DUE_INDEX, STATUS_DUE_INDEX, DEAD_INDEX, UNKNOWN_INDEX)

_INDEX_OF: dict[State, str] = {
    State.SENDING: SENDING_INDEX,
    State.SCHEDULED: DUE_INDEX,
    State.DEFERRED: DUE_INDEX,
    State.SENT: STATUS_DUE_INDEX,
    State.PARTLY_DELIVERED: STATUS_DUE_INDEX,
    State.DEAD: DEAD_INDEX,
    State.UNKNOWN: UNKNOWN_INDEX,
}
IndexedState = Literal[State.QUEUED, State.SCHEDULED, State.DEFERRED, State.SENDING, State.SENT,
                       State.PARTLY_DELIVERED, State.DEAD, State.UNKNOWN]  # fmt: skip


@overload
def state_index(state: IndexedState, priority: object = None) -> str: ...
@overload
def state_index(state: State, priority: object = None) -> str | None: ...
def state_index(state: State, priority: object = None) -> str | None:
    """The sorted set a message in `state` is indexed in, or None for a state without one (the final
    states). QUEUED has one per priority: an unknown priority reads normal (Priority.read)."""
    if state is State.QUEUED:
        return QUEUED_PREFIX + Priority.read(priority).value
    return _INDEX_OF.get(state)


def queued_index(priority: object) -> str:
    """The QUEUED index of a priority: state_index(State.QUEUED, priority)."""
    return state_index(State.QUEUED, priority)


def id_sms(provider_id: str) -> str:
    """The id_sms -> message id map, one string key per LightSMS id_sms holding the message id.

    Written by transition.lua with the move to SENT that sets id_sms, with the record's TTL, so that
    it expires with the record (a single hash could not: its fields do not expire on Redis 7.0)."""
    return PREFIX + "idsms:" + provider_id


OPT_OUT = PREFIX + "optout"  # set of digits-only phone numbers
STATS = PREFIX + "stats"  # hash of counters


def message(message_id: str) -> str:
    return MESSAGE_PREFIX + message_id


def idempotency(key: str) -> str:
    return PREFIX + "idem:" + key


def pause(login: str) -> str:
    return PREFIX + "pause:" + login


def limiter(login: str) -> str:
    return PREFIX + "limiter:" + login


def arrival_window(login: str) -> str:
    """The requests to LightSMS in the last second, and those under way (core/arrival_window.py)."""
    return PREFIX + "arrivals:" + login


def pause_strikes(login: str) -> str:
    """How many pauses came close together: each lasts longer than the one before."""
    return PREFIX + "pause-strikes:" + login


def price(login: str) -> str:
    """The last known price of one SMS part, a decimal string."""
    return PREFIX + "price:" + login


# --- the pollers (worker/inbound.py, worker/delivery.py) --------------------------------------------

def poll_lock(poller: str) -> str:
    """Held by the one process running that poller ("incoming", "status") at a time."""
    return PREFIX + "lock:poll:" + poller


INBOUND_CURSOR = PREFIX + "inbound:cursor"  # unix time (UTC) up to which incoming.php has been read
INBOUND_REJECTED = PREFIX + "inbound:rejected"  # list of JSON records LightSMS sent that could not be read
POLLER_HEALTH = PREFIX + "pollers"  # hash: <poller>_ok_at = unix time of its last successful poll


def inbound_seen(sms_id: str) -> str:
    """Set (NX, with a TTL longer than the overlap) once the incoming SMS was published."""
    return PREFIX + "inbound:seen:" + sms_id


# --- consumers (consumers/) ---------------------------------------------------------------------------

def handled(queue: str, handler: str, event_id: str) -> str:
    """Set once `handler` has returned for the event: a redelivered event is not handled again."""
    return f"{PREFIX}handled:{queue}:{handler}:{event_id}"


# On a Redis broker (consumers/redis_consumer.py), beside kombu's list named as the queue:
def consumer_held(queue: str, consumer_id: str) -> str:
    """List: the event one consumer took off `queue` and has not settled (moved there atomically)."""
    return f"{PREFIX}consumer:{queue}:{consumer_id}:held"


def consumers_of(queue: str) -> str:
    """Sorted set: the consumers that may hold an event of `queue`, scored by the deadline of their
    last renewal (ms of Redis TIME plus their own LIGHTSMS_CONSUMER_DEAD_AFTER): past it, dead."""
    return f"{PREFIX}consumers:{queue}"


def auto_reply(phone_digest: str) -> str:
    """Set (NX, with the auto-reply period as TTL) when a number got an automatic reply. Named by a
    digest of the number: no phone number in clear in a key name."""
    return PREFIX + "autoreply:" + phone_digest
