"""The Lua compare-and-set scripts against a real Redis: every move atomic, indexes kept in step."""

from __future__ import annotations

import random
import threading
import time

import pytest

from core import keys
from core.message import Message
from core.states import State
from core.store import CLAIM_MARK, Move, Store, attempt_mark


@pytest.fixture
def store(redis_server, redis_client) -> Store:
    return Store(redis_server.client(), record_ttl=3600)


def queued(message_id: str, *, priority: str = "normal", key: str | None = None) -> Message:
    now = time.time()
    return Message(id=message_id, phone="37060000001", text="hi", sender="LightSMS", state=State.QUEUED,
                   priority=priority, created_at=now, updated_at=now, idempotency_key=key)  # fmt: skip


def indexes_of(redis_client, message_id: str) -> list[str]:
    return [index for index in keys.INDEXES if redis_client.zscore(index, message_id) is not None]


def test_create_indexes_by_priority_and_honours_idempotency_keys(store, redis_client):
    assert store.create([queued("a", priority="bulk", key="k1")]) == [("a", True)]
    assert store.create([queued("b", key="k1")]) == [("a", False)]
    assert redis_client.exists("sms:msg:b") == 0
    assert indexes_of(redis_client, "a") == [keys.queued_index("bulk")]


def test_a_move_happens_once_and_only_from_an_allowed_state(store, redis_client):
    store.create([queued("a")])
    claim = Move("a", (State.QUEUED,), State.SENDING, score=99.0, fields=(("lease", "L1"),))
    assert store.move(claim) == (True, "QUEUED")
    assert store.move(claim) == (False, "SENDING")  # a second claimer finds it taken
    assert indexes_of(redis_client, "a") == [keys.SENDING_INDEX]


def test_moving_out_of_sending_needs_the_lease(store, redis_client):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING, fields=(("lease", "L1"),)))
    assert store.move(Move("a", (State.SENDING,), State.SENT, lease="L2", ttl=60)) == (False, "SENDING")
    assert store.move(Move("a", (State.SENDING,), State.SENT, lease="L1", ttl=60)) == (True, "SENDING")
    assert indexes_of(redis_client, "a") == [keys.STATUS_DUE_INDEX]
    assert 0 < redis_client.ttl("sms:msg:a") <= 60


def test_a_field_condition_guards_the_move(store):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING, fields=(("lease", "L1"), ("inflight", "1"))))
    back = Move("a", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0"))
    assert store.move(back) == (False, "SENDING")


def test_begin_send_refuses_messages_taken_from_us(store, redis_client):
    store.create([queued("a"), queued("b"), queued("c")])
    lease_until = store.now() + 5  # a third of it left: renewed with the mark
    for message_id in "abc":
        store.move(Move(message_id, (State.QUEUED,), State.SENDING,
                        fields=(("lease", "L1"), ("inflight", "0"), ("lease_until", lease_until))))  # fmt: skip
    # "c"'s lease ran out: not ours any more, even before the sweeper has seen it
    redis_client.hset("sms:msg:c", "lease_until", store.now() - 1)
    # the sweeper took "b" back while our worker stalled
    store.move(Move("b", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0")))
    assert store.begin_send(["a", "b", "c"], lease="L1", lease_seconds=30) == {"a"}
    assert redis_client.hget("sms:msg:a", "inflight") == "1"
    assert redis_client.zscore(keys.SENDING_INDEX, "a") > store.now() + 25
    # ... and once in flight, the sweeper can no longer queue it again
    assert store.move(Move("a", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0")))[0] is False


def test_ending_an_attempt_clears_only_the_marks_of_messages_still_sending_under_the_lease(store, redis_client):
    store.create([queued(i) for i in "abcde"])
    store.claim(list("abcde"), lease="L1", lease_seconds=30)
    mark = attempt_mark()
    assert store.begin_send(list("abcde"), lease="L1", lease_seconds=30, mark=mark) == set("abcde")
    redis_client.hset("sms:msg:b", "lease", "L2")  # taken by another worker's lease
    store.move(Move("c", (State.SENDING,), State.UNKNOWN, lease="L1", when=("inflight", "1")))  # settled
    redis_client.hset("sms:msg:d", "lease_until", store.now() - 1)  # its lease ran out: still never sent
    assert store.end_attempt(list("abcde"), lease="L1", mark=attempt_mark()) == 0  # not this attempt's marks
    assert store.end_attempt(list("abcde"), lease="L1", mark=CLAIM_MARK) == 0
    assert store.end_attempt(list("abcde") + ["missing"], lease="L1", mark=mark) == 3
    marks = {i: redis_client.hget(f"sms:msg:{i}", "inflight") for i in "abcde"}
    assert marks == {"a": "0", "b": "1", "c": "1", "d": "0", "e": "0"}
    assert redis_client.hget("sms:msg:c", "state") == "UNKNOWN"
    assert redis_client.exists("sms:msg:missing") == 0  # nothing written for an id with no record
    # ... and now the sweeper may queue them again, as it may any message never sent
    assert store.move(Move("a", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0")))[0] is True
    assert store.end_attempt([], lease="L1", mark=mark) == 0


def test_a_late_copy_of_an_earlier_attempt_s_mark_is_refused_and_the_same_mark_again_is_not(store, redis_client):
    store.create([queued("a")])
    store.claim(["a"], lease="L1", lease_seconds=30)
    first, second = attempt_mark(), attempt_mark()
    assert CLAIM_MARK < first < second  # as Lua compares them: as text
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, mark=second) == {"a"}
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, mark=second) == {"a"}  # retried: the same mark
    assert store.end_attempt(["a"], lease="L1", mark=second) == 1
    # the first attempt's begin_send, arriving late, must not mark it again with a mark whose own
    # late end_attempt would then clear it while the second attempt's request is in flight
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, mark=first) == set()
    assert redis_client.hmget("sms:msg:a", "inflight", "mark") == ["0", second]
    # the lease keeper's renewal writes no mark, nor the in-flight flag
    assert store.renew_lease(["a"], lease="L1", lease_seconds=30) == {"a"}
    assert redis_client.hmget("sms:msg:a", "inflight", "mark") == ["0", second]


@pytest.mark.parametrize("left_by", ["a later mark, on another host's clock", "a mark of the older uuid kind"])
def test_a_mark_left_by_an_earlier_lease_does_not_outrank_the_next_lease_s(store, redis_client, left_by):
    store.create([queued("a")])
    store.claim(["a"], lease="L1", lease_seconds=30)
    old = "99999999999999999999" if left_by.startswith("a later") else "f" * 32
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, mark=old) == {"a"}
    store.move(Move("a", (State.SENDING,), State.QUEUED, lease="L1", fields=(("lease", ""), ("inflight", "0"))))
    store.claim(["a"], lease="L2", lease_seconds=30)  # claimed again, not marked by the claim
    assert redis_client.hget("sms:msg:a", "mark") == CLAIM_MARK
    assert store.begin_send(["a"], lease="L2", lease_seconds=30, mark=attempt_mark()) == {"a"}
    assert redis_client.hget("sms:msg:a", "inflight") == "1"


def test_a_lease_with_room_for_the_whole_request_gets_the_in_flight_mark_only(store, redis_client):
    store.create([queued("a"), queued("b")])
    store.claim(["a", "b"], lease="L1", lease_seconds=30)
    claimed_until = redis_client.hget("sms:msg:a", "lease_until")
    index_score = redis_client.zscore(keys.SENDING_INDEX, "a")
    # a request that may take 18 s, where ~30 s are left: the lease is left as it is ...
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, keep_if_left=18) == {"a"}
    # ... one that may take longer than what is left: renewed with the mark
    assert store.begin_send(["b"], lease="L1", lease_seconds=60, keep_if_left=35) == {"b"}
    assert float(redis_client.hget("sms:msg:b", "lease_until")) > float(claimed_until) + 25
    record = redis_client.hgetall("sms:msg:a")
    assert record["inflight"] == "1"
    assert record["lease_until"] == claimed_until
    assert redis_client.zscore(keys.SENDING_INDEX, "a") == index_score == float(claimed_until)  # still agreeing


def test_the_sweeper_moves_a_message_only_while_its_lease_has_run_out(store, redis_client):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING,
                    fields=(("lease", "L1"), ("inflight", "1"), ("lease_until", store.now() + 30))))  # fmt: skip
    now = store.now()
    # the sweeper read it as expired a moment ago, but the worker renewed the lease since
    stale = Move("a", (State.SENDING,), State.UNKNOWN, lease="L1", when=("inflight", "1"), expired_by=now)
    assert store.move(stale) == (False, "SENDING")
    redis_client.hset("sms:msg:a", "lease_until", now - 1)
    assert store.move(stale) == (True, "SENDING")


def test_pop_due_queues_what_is_due_and_skips_cancelled(store, redis_client):
    later = queued("later")
    store.create([queued("a", priority="high"), queued("c"), later])
    now = time.time()
    store.move(Move("a", (State.QUEUED,), State.DEFERRED, score=now - 1))
    store.move(Move("c", (State.QUEUED,), State.DEFERRED, score=now - 1))
    store.move(Move("c", (State.DEFERRED,), State.CANCELLED))
    store.move(Move("later", (State.QUEUED,), State.DEFERRED, score=now + 60))
    redis_client.zadd(keys.DUE_INDEX, {"c": now - 1})  # a stale entry
    assert store.pop_due(now=now, limit=10) == [("a", "high")]
    assert indexes_of(redis_client, "a") == [keys.queued_index("high")]
    assert redis_client.zscore(keys.DUE_INDEX, "c") is None
    assert redis_client.zscore(keys.DUE_INDEX, "later") is not None


def test_an_unreadable_record_reads_as_missing(store, redis_client):
    redis_client.hset("sms:msg:x", mapping={"id": "x", "state": "BOGUS"})
    store.create([queued("a")])
    assert [m.id if m else None for m in store.get_many(["x", "a"])] == [None, "a"]


# -- the index layout: every move leaves a message in exactly the index its state maps to -------------

# Every move of the state machine (README, "What happens to a message"), and who makes it.
EDGES = [
    (State.QUEUED, State.SENDING),  # the claim
    (State.QUEUED, State.DEFERRED),  # paused account, rate limit
    (State.QUEUED, State.CANCELLED),
    (State.QUEUED, State.FAILED),  # screened: expired, invalid
    (State.QUEUED, State.SUPPRESSED),  # screened: opted out
    (State.SCHEDULED, State.QUEUED),  # pop_due
    (State.SCHEDULED, State.CANCELLED),
    (State.DEFERRED, State.QUEUED),  # pop_due
    (State.DEFERRED, State.CANCELLED),
    (State.SENDING, State.SENT),
    (State.SENDING, State.FAILED),
    (State.SENDING, State.SUPPRESSED),
    (State.SENDING, State.UNKNOWN),
    (State.SENDING, State.DEFERRED),
    (State.SENDING, State.DEAD),
    (State.SENDING, State.QUEUED),  # released: no request was started
    (State.SENT, State.DELIVERED),
    (State.SENT, State.UNDELIVERED),
    (State.SENT, State.EXPIRED),
    (State.SENT, State.PARTLY_DELIVERED),  # some parts delivered: still asked about
    (State.PARTLY_DELIVERED, State.DELIVERED),
    (State.PARTLY_DELIVERED, State.UNDELIVERED),
    (State.PARTLY_DELIVERED, State.EXPIRED),
    (State.UNKNOWN, State.SENT),  # a late reply, or an operator's verdict
    (State.UNKNOWN, State.FAILED),
    (State.UNKNOWN, State.SUPPRESSED),
    (State.UNKNOWN, State.QUEUED),  # an operator's "resend"
    (State.DEAD, State.QUEUED),  # an operator's retry
]
LEASE = "L1"


def test_the_edges_reach_every_state_and_every_index_is_some_states():
    assert {to for _, to in EDGES} | {State.SCHEDULED} == set(State)
    mapped = {keys.state_index(state, priority) for state in State for priority in keys.PRIORITIES}
    assert mapped - {None} == set(keys.INDEXES)


def only_index(state: State, priority: str) -> list[str]:
    index = keys.state_index(state, priority)
    return [] if index is None else [index]


def id_sms_entries(redis_client) -> dict[str, str]:
    return {key: redis_client.get(key) for key in redis_client.scan_iter(keys.id_sms("*"))}


def move_to(store: Store, message_id: str, frm: State, to: State) -> tuple[bool, str]:
    """The move as the code that makes it would ask for it (a SENT move carries an id_sms)."""
    if (frm, to) == (State.QUEUED, State.SENDING):
        claimed = store.claim([message_id], lease=LEASE, lease_seconds=30)
        return bool(claimed), frm.value
    fields: tuple[tuple[str, object], ...] = ()
    if to is State.SENT:
        fields = (("id_sms", f"sms-{message_id}"), ("error_code", "0"))
    ttl = 3600 if to not in (State.QUEUED, State.SENDING, State.DEFERRED, State.UNKNOWN, State.DEAD) else 0
    score = store.now() if to is not State.SENT else 0.0
    id_sms = f"sms-{message_id}" if frm in (State.SENT, State.PARTLY_DELIVERED) else ""
    lease = LEASE if frm in (State.SENDING, State.UNKNOWN) else ""
    return store.move(Move(message_id, (frm,), to, score=score, lease=lease, ttl=ttl, fields=fields, id_sms=id_sms))


# How each state is reached from a new message.
PATHS = {
    State.QUEUED: [],
    State.SCHEDULED: [],  # created so
    State.DEFERRED: [State.DEFERRED],
    State.SENDING: [State.SENDING],
    State.SENT: [State.SENDING, State.SENT],
    State.PARTLY_DELIVERED: [State.SENDING, State.SENT, State.PARTLY_DELIVERED],
    State.UNKNOWN: [State.SENDING, State.UNKNOWN],
    State.DEAD: [State.SENDING, State.DEAD],
}


@pytest.mark.parametrize("priority", ["high", "bulk"])
@pytest.mark.parametrize(("frm", "to"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_every_move_leaves_the_message_in_exactly_its_states_index(store, redis_client, frm, to, priority):
    message = queued("m", priority=priority)
    if frm is State.SCHEDULED:
        message.state, message.send_at = State.SCHEDULED, time.time() + 60
    store.create([message])
    state = message.state
    for step in [*PATHS[frm], to]:
        assert move_to(store, "m", state, step)[0], f"{state} -> {step}"
        state = step
        assert redis_client.hget("sms:msg:m", "state") == state.value
        assert indexes_of(redis_client, "m") == only_index(state, priority)
    # the id_sms map is written with a move to SENT that sets an id_sms, and kept while the record lives
    sent_on_the_way = State.SENT in [*PATHS[frm], to]
    assert id_sms_entries(redis_client) == ({keys.id_sms("sms-m"): "m"} if sent_on_the_way else {})


def test_a_move_refused_touches_no_index_and_no_map(store, redis_client):
    store.create([queued("a", priority="bulk")])
    store.claim(["a"], lease="L1", lease_seconds=30)
    refused = Move("a", (State.SENDING,), State.SENT, lease="L2", ttl=60, fields=(("id_sms", "x1"),))
    assert store.move(refused) == (False, "SENDING")
    assert indexes_of(redis_client, "a") == [keys.SENDING_INDEX]
    assert id_sms_entries(redis_client) == {}
    not_allowed = Move("a", (State.QUEUED,), State.SENT, fields=(("id_sms", "x1"),))
    assert store.move(not_allowed) == (False, "SENDING")
    assert redis_client.zcard(keys.STATUS_DUE_INDEX) == 0 and id_sms_entries(redis_client) == {}


def test_an_unknown_stored_priority_is_queued_as_normal_by_every_script(store, redis_client):
    store.create([queued("a")])
    redis_client.hset("sms:msg:a", "priority", "urgent")  # written by a foreign enqueuer
    [claimed] = store.claim(["a"], lease="L1", lease_seconds=30)
    assert indexes_of(redis_client, "a") == [keys.SENDING_INDEX]
    store.move(Move("a", (State.SENDING,), State.DEFERRED, score=time.time() - 1, lease="L1"))
    assert store.pop_due(now=time.time(), limit=10) == [("a", "normal")]
    assert indexes_of(redis_client, "a") == [keys.queued_index("normal")]
    store.move(Move("a", (State.QUEUED,), State.CANCELLED, ttl=60))
    assert indexes_of(redis_client, "a") == []


# -- SENT: the status-due index and the id_sms map -----------------------------------------------------


def sent(store: Store, message_id: str, *, id_sms: str | None, ttl: int = 3600) -> tuple[bool, str]:
    fields = () if id_sms is None else (("id_sms", id_sms),)
    return store.move(Move(message_id, (State.SENDING, State.UNKNOWN), State.SENT, lease="L1", ttl=ttl,
                           fields=fields))  # fmt: skip


def test_sent_without_a_score_is_due_at_once_and_maps_its_id_sms_for_as_long_as_the_record(store, redis_client):
    store.create([queued("a")])
    store.claim(["a"], lease="L1", lease_seconds=30)
    before = time.time()
    assert sent(store, "a", id_sms="777", ttl=3600) == (True, "SENDING")
    due = redis_client.zscore(keys.STATUS_DUE_INDEX, "a")
    assert before <= due <= time.time()  # the sender passes its own first check; a bare move is due now
    assert redis_client.get(keys.id_sms("777")) == "a"
    assert 3590 < redis_client.ttl(keys.id_sms("777")) <= redis_client.ttl("sms:msg:a") <= 3600
    # delivered: out of the status-due index; the map entry stays and, named by the mover, keeps the
    # record's new TTL
    delivered = Move("a", (State.SENT,), State.DELIVERED, ttl=7200, id_sms="777")
    assert store.move(delivered) == (True, "SENT")
    assert indexes_of(redis_client, "a") == []
    assert redis_client.get(keys.id_sms("777")) == "a"
    assert 7190 < redis_client.ttl(keys.id_sms("777")) <= redis_client.ttl("sms:msg:a") <= 7200


def test_an_explicit_score_is_kept_for_sent(store, redis_client):
    store.create([queued("a")])
    store.claim(["a"], lease="L1", lease_seconds=30)
    store.move(Move("a", (State.SENDING,), State.SENT, score=1234.0, lease="L1", fields=(("id_sms", "1"),)))
    assert redis_client.zscore(keys.STATUS_DUE_INDEX, "a") == 1234.0


def test_a_late_reply_maps_its_id_sms_and_an_operators_verdict_maps_nothing(store, redis_client):
    store.create([queued("late"), queued("operator"), queued("no-id")])
    store.claim(["late", "operator", "no-id"], lease="L1", lease_seconds=30)
    for message_id in ("late", "operator", "no-id"):
        store.move(Move(message_id, (State.SENDING,), State.UNKNOWN, score=time.time(), lease="L1"))
    assert id_sms_entries(redis_client) == {}
    assert sent(store, "late", id_sms="900") == (True, "UNKNOWN")  # the reply came after the sweeper
    assert store.move(Move("operator", (State.UNKNOWN,), State.SENT, ttl=3600)) == (True, "UNKNOWN")
    assert sent(store, "no-id", id_sms="") == (True, "UNKNOWN")  # "0" without an id_sms
    assert id_sms_entries(redis_client) == {keys.id_sms("900"): "late"}
    for message_id in ("late", "operator", "no-id"):
        assert indexes_of(redis_client, message_id) == [keys.STATUS_DUE_INDEX]


def test_end_status_checks_gives_up_on_a_polled_message_and_drops_only_stale_entries(store, redis_client):
    polled = (State.SENT, State.PARTLY_DELIVERED)
    store.create([queued("a"), queued("b")])
    store.claim(["a", "b"], lease="L1", lease_seconds=30)
    sent(store, "a", id_sms="1")
    sent(store, "b", id_sms="2")
    # without a note a polled message keeps its entry: only a stale one goes
    assert store.end_status_checks("a", polled) is False
    assert redis_client.zscore(keys.STATUS_DUE_INDEX, "a") is not None
    # with a note: given up on, left SENT, out of the index
    assert store.end_status_checks("a", polled, {"status_note": "deadline"}) is True
    assert redis_client.hmget("sms:msg:a", "state", "status_note") == ["SENT", "deadline"]
    assert redis_client.zscore(keys.STATUS_DUE_INDEX, "a") is None
    # a stale entry (its record gone) goes, and no hash is written again for it
    redis_client.delete("sms:msg:b")
    assert store.end_status_checks("b", polled, {"status_note": "deadline"}) is False
    assert redis_client.zscore(keys.STATUS_DUE_INDEX, "b") is None and not redis_client.exists("sms:msg:b")


# -- the claim -----------------------------------------------------------------------------------------


def test_the_claim_returns_the_claimed_records_whole(store, redis_client):
    store.create([queued("a", priority="high"), queued("b"), queued("c", priority="bulk")])
    store.move(Move("b", (State.QUEUED,), State.CANCELLED, ttl=60))
    before = store.now()
    claimed = store.claim(["c", "b", "missing", "a"], lease="L1", lease_seconds=30)
    assert [m.id for m in claimed] == ["c", "a"]  # in the order asked; not the cancelled, not the missing
    for m in claimed:
        assert (m.state, m.lease, m.inflight, m.phone, m.text) == (State.SENDING, "L1", False, "37060000001", "hi")
        lease_until = float(redis_client.hget(f"sms:msg:{m.id}", "lease_until"))
        assert before + 30 <= lease_until <= store.now() + 30
        assert redis_client.zscore(keys.SENDING_INDEX, m.id) == pytest.approx(lease_until)
        assert indexes_of(redis_client, m.id) == [keys.SENDING_INDEX]
    assert [m.priority for m in claimed] == ["bulk", "high"]
    assert store.claim([], lease="L1", lease_seconds=30) == []


def test_a_claim_run_again_under_the_same_lease_returns_the_same_messages(store, redis_client):
    store.create([queued("a"), queued("b")])
    first = store.claim(["a", "b"], lease="L1", lease_seconds=30)
    until = redis_client.hget("sms:msg:a", "lease_until")
    again = store.claim(["a", "b"], lease="L1", lease_seconds=30)  # the first reply was lost
    assert [m.id for m in again] == [m.id for m in first] == ["a", "b"]
    assert redis_client.hget("sms:msg:a", "lease_until") == until  # nothing moved the second time
    assert store.claim(["a", "b"], lease="L2", lease_seconds=30) == []  # another lease gets nothing
    # once in flight or settled, it is no longer claimable, even under its own lease
    store.move(Move("b", (State.SENDING,), State.SENT, lease="L1", ttl=60, fields=(("id_sms", "1"),)))
    assert [m.id for m in store.claim(["a", "b"], lease="L1", lease_seconds=30)] == ["a"]


def test_racing_claims_give_each_message_to_one_lease_only(store, redis_server, redis_client):
    ids = [f"m{i}" for i in range(300)]
    store.create([queued(i) for i in ids])
    leases = [f"L{n}" for n in range(8)]
    start = threading.Barrier(len(leases))
    results: dict[str, list[str]] = {}

    def claim(lease: str) -> None:
        mine = Store(redis_server.client(), record_ttl=3600)
        order = random.Random(lease).sample(ids, len(ids))
        start.wait()
        got: list[str] = []
        for chunk in range(0, len(order), 25):
            got += [m.id for m in mine.claim(order[chunk:chunk + 25], lease=lease, lease_seconds=30)]
        results[lease] = got

    threads = [threading.Thread(target=claim, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    claimed = [message_id for lease in leases for message_id in results[lease]]
    assert sorted(claimed) == sorted(ids)  # every message claimed, none twice
    for lease in leases:
        assert all(redis_client.hget(f"sms:msg:{i}", "lease") == lease for i in results[lease])
    assert redis_client.zcard(keys.SENDING_INDEX) == len(ids)
    assert redis_client.zcard(keys.queued_index("normal")) == 0


def test_create_refuses_a_whole_call_with_an_opted_out_recipient_and_stores_nothing(store, redis_client):
    from core.store import RecipientOptedOut

    redis_client.sadd(keys.OPT_OUT, "37060000009")
    fine, opted = queued("a", key="k-a"), queued("b", key="k-b")
    opted.phone = "37060000009"
    with pytest.raises(RecipientOptedOut) as refused:
        store.create([fine, opted], refuse_opted_out=True)
    assert refused.value.index == 1
    assert redis_client.exists("sms:msg:a", "sms:msg:b", keys.idempotency("k-a")) == 0
    assert indexes_of(redis_client, "a") == []
    # without the screen (the worker screens again), or for the STOP confirmation, it is stored
    confirmation = queued("c")
    confirmation.phone, confirmation.opt_out_confirmation = "37060000009", True
    assert store.create([confirmation], refuse_opted_out=True) == [("c", True)]
    assert store.create([opted]) == [("b", True)]


def test_create_many_in_one_call_indexes_each_and_a_repeated_key_within_it_names_the_first(store, redis_client):
    many = [queued(f"m{i}", priority=("bulk" if i % 2 else "normal")) for i in range(2500)]
    first, repeat = queued("k1", key="same"), queued("k2", key="same")
    results = store.create([*many, first, repeat], refuse_opted_out=True)
    assert results[:2500] == [(m.id, True) for m in many]
    assert results[2500:] == [("k1", True), ("k1", False)]
    assert redis_client.zcard(keys.queued_index("bulk")) == 1250
    assert redis_client.zcard(keys.queued_index("normal")) == 1251
    assert redis_client.exists("sms:msg:k2") == 0
    [stored] = store.get_many(["m7"])
    assert stored is not None and stored.priority == "bulk" and stored.state is State.QUEUED
    assert redis_client.hget("sms:msg:m7", "queued_at") is not None


def test_records_unlike_each_other_in_one_call_are_each_stored_exactly_as_they_are(store, redis_client):
    """create.lua gets the fields every message of a call shares once: a field that one message has, or
    has with another value, must be its own and no other's."""
    store.create([queued("old", key="taken")])
    alike = [queued(f"s{i}") for i in range(3)]
    for message in alike:
        message.created_at = message.updated_at = alike[0].created_at
    odd = queued("odd", priority="high", key="its-own")
    odd.text, odd.metadata, odd.phone_checked = "another text", {"order": 7}, True
    later = queued("later")
    later.state, later.send_at = State.SCHEDULED, time.time() + 3600
    repeat = queued("again", key="taken")
    results = store.create([alike[0], repeat, odd, alike[1], later, alike[2]])
    assert results == [("s0", True), ("old", False), ("odd", True), ("s1", True), ("later", True), ("s2", True)]
    for message in [*alike, odd, later]:
        expected = message.to_fields()
        if message.state is State.QUEUED:
            expected["queued_at"] = str(message.created_at)
        assert redis_client.hgetall(keys.message(message.id)) == expected, message.id
    assert redis_client.exists(keys.message("again")) == 0
    assert indexes_of(redis_client, "later") == [keys.state_index(State.SCHEDULED)]
    assert redis_client.zscore(keys.state_index(State.SCHEDULED), "later") == pytest.approx(later.send_at)


def test_create_pushes_the_tasks_it_is_given_when_all_are_stored_and_says_when_it_did_not(store, redis_client):
    from core.store import TasksNotPushed

    assert store.create([queued("a", key="k")], publish=[("tasks", "task of a")]) == [("a", True)]
    assert store.create([queued("b", key="k")], publish=[("tasks", "task of b")]) == [("a", False)]
    assert redis_client.lrange("tasks", 0, -1) == ["task of a"]  # nothing stored: nothing to push
    # some repeats: their tasks would name ids no worker finds, so none is pushed and the caller is told
    with pytest.raises(TasksNotPushed) as partly:
        store.create([queued("c"), queued("d", key="k")], publish=[("tasks", "task of c and d")])
    assert partly.value.results == [("c", True), ("a", False)]
    assert redis_client.hget(keys.message("c"), "state") == "QUEUED"
    redis_client.set("not-a-list", "x")
    with pytest.raises(TasksNotPushed) as refused:
        store.create([queued("e")], publish=[("not-a-list", "task"), ("tasks", "task of e")])
    assert refused.value.results == [("e", True)]
    assert redis_client.hget(keys.message("e"), "state") == "QUEUED"  # stored all the same
    assert redis_client.lrange("tasks", 0, -1) == ["task of e", "task of a"]


@pytest.mark.parametrize("key", [None, "k1"], ids=["no key", "a key"])
def test_create_run_again_after_its_reply_was_lost_writes_and_pushes_nothing_again(store, redis_client, key):
    """redis-py retries a call once when the reply is lost: by then a worker may have claimed the
    first run's message, and its task is queued."""
    first = queued("m1", key=key)
    call = [first, queued("m2")]
    assert store.create(call, publish=[("tasks", "the task")]) == [("m1", True), ("m2", True)]
    redis_client.hset(keys.message("m1"), mapping={"state": "SENDING", "lease": "L1"})  # a worker claimed it
    redis_client.sadd(keys.OPT_OUT, first.phone)  # and the screen would now refuse: it is not run again
    again = store.create(call, publish=[("tasks", "the task")], refuse_opted_out=True)
    assert again == [("m1", True), ("m2", True)]  # answered as the first run was
    assert redis_client.hget(keys.message("m1"), "state") == "SENDING"
    assert redis_client.lrange("tasks", 0, -1) == ["the task"]
    # a call whose first message was a repeat is told by the next one, and answered as the first run
    # was: with repeats, its tasks were not pushed, and the caller must still publish them
    from core.store import TasksNotPushed

    store.create([queued("old", key="taken")])
    call = [queued("r0", key="taken"), queued("r1", key=key and "k2")]
    for _ in range(2):
        with pytest.raises(TasksNotPushed) as not_pushed:
            store.create(call, publish=[("tasks", "r0 and r1")])
        assert not_pushed.value.results == [("old", False), ("r1", True)]
        redis_client.hset(keys.message("r1"), "state", "SENT")
    assert redis_client.hget(keys.message("r1"), "state") == "SENT"
    assert redis_client.lrange("tasks", 0, -1) == ["the task"]


def test_moves_after_the_script_cache_was_flushed_load_it_again_and_each_happens_once(store, redis_client):
    store.create([queued("a"), queued("b")])
    redis_client.script_flush()  # a restarted Redis has forgotten every script
    claim = [Move(i, (State.QUEUED,), State.SENDING, fields=(("lease", "L1"),)) for i in ("a", "b", "gone")]
    assert store.apply(claim) == [(True, "QUEUED"), (True, "QUEUED"), (False, "")]
    assert store.apply(claim) == [(False, "SENDING"), (False, "SENDING"), (False, "")]
    redis_client.script_flush()
    assert store.move(Move("a", (State.SENDING,), State.QUEUED, lease="L1")) == (True, "SENDING")


def test_indexes_gathered_for_a_call_end_right_for_thousands_and_for_one_message_moved_twice(store, redis_client):
    ids = [f"m{i}" for i in range(2600)]
    store.create([queued(i) for i in ids])
    claims = [Move(i, (State.QUEUED,), State.SENDING, score=7.0, fields=(("lease", "L1"),)) for i in ids]
    assert all(ok for ok, _ in store.apply(claims))
    assert redis_client.zcard(keys.queued_index("normal")) == 0 and redis_client.zcard(keys.SENDING_INDEX) == 2600
    twice = [Move("m0", (State.SENDING,), State.DEFERRED, score=1.0, lease="L1"),
             Move("m1", (State.SENDING,), State.DEFERRED, score=1.0, lease="L1"),
             Move("m0", (State.DEFERRED,), State.QUEUED, score=2.0),
             Move("m0", (State.QUEUED,), State.SENDING, score=3.0, fields=(("lease", "L2"),))]  # fmt: skip
    assert [ok for ok, _ in store.apply(twice)] == [True, True, True, True]
    assert indexes_of(redis_client, "m0") == [keys.SENDING_INDEX] and redis_client.zscore(keys.SENDING_INDEX, "m0") == 3
    assert indexes_of(redis_client, "m1") == [keys.state_index(State.DEFERRED)]
    assert redis_client.zcard(keys.SENDING_INDEX) == 2599


def test_a_key_that_is_no_hash_is_no_message_and_the_moves_before_it_keep_their_indexes(store, redis_client):
    store.create([queued("a")])
    redis_client.set(keys.message("junk"), "written over by hand")
    moves = [Move(i, (State.QUEUED,), State.CANCELLED, ttl=60) for i in ("a", "junk")]
    assert store.apply(moves) == [(True, "QUEUED"), (False, "")]
    assert indexes_of(redis_client, "a") == []


def test_many_moves_in_one_call_are_each_decided_alone(store, redis_client):
    from core import store as store_module

    ids = [f"m{i}" for i in range(store_module.MOVES_PER_CALL * 2 + 7)]
    store.create([queued(i, priority="bulk" if i.endswith("3") else "normal") for i in ids])
    store.move(Move("m5", (State.QUEUED,), State.CANCELLED))
    claims = [Move(i, (State.QUEUED,), State.SENDING, score=50.0, fields=(("lease", "L1"), ("n", i))) for i in ids]
    results = store.apply(claims)
    assert results == [(False, "CANCELLED") if i == "m5" else (True, "QUEUED") for i in ids]
    assert redis_client.zcard(keys.queued_index("normal")) == redis_client.zcard(keys.queued_index("bulk")) == 0
    assert redis_client.zcard(keys.SENDING_INDEX) == len(ids) - 1
    assert redis_client.hget("sms:msg:m13", "n") == "m13" and redis_client.hget("sms:msg:m5", "n") is None


# -- the claim before a send: pause and opt-outs in the same call ---------------------------------


def test_a_claim_to_send_while_paused_claims_nothing_and_returns_the_pause(store, redis_client):
    store.create([queued("a")])
    redis_client.set("sms:pause:demo", '{"reason": "funds", "until": 1}')
    claim = store.claim_to_send(["a"], lease="L1", lease_seconds=30, pause_key="sms:pause:demo")
    assert claim.pause == '{"reason": "funds", "until": 1}' and claim.messages == ()
    assert redis_client.hget("sms:msg:a", "state") == "QUEUED" and indexes_of(redis_client, "a") == [
        keys.queued_index("normal")
    ]


def test_a_claim_to_send_flags_opted_out_phones_but_never_the_stop_confirmation(store, redis_client):
    now = time.time()
    confirmation = Message(id="c", phone="37060000009", text="stopped", sender="LightSMS", state=State.QUEUED,
                           created_at=now, updated_at=now, opt_out_confirmation=True)  # fmt: skip
    other = Message(id="o", phone="37060000009", text="hi", sender="LightSMS", state=State.QUEUED,
                    created_at=now, updated_at=now)  # fmt: skip
    store.create([queued("a"), confirmation, other])
    store.opt_out("37060000009")
    claim = store.claim_to_send(["a", "c", "o"], lease="L1", lease_seconds=30, pause_key="sms:pause:none")
    assert claim.pause is None
    assert [m.id for m in claim.messages] == ["a", "c", "o"]
    assert claim.opted_out == {"o"}
    assert all(m.state is State.SENDING and m.lease == "L1" for m in claim.messages)


def test_a_claim_run_again_under_a_pause_still_returns_what_its_lease_took(store, redis_client):
    store.create([queued("a"), queued("b")])
    first = store.claim_to_send(["a"], lease="L1", lease_seconds=30, pause_key="sms:pause:demo")
    assert [m.id for m in first.messages] == ["a"]  # and this reply was lost
    redis_client.set("sms:pause:demo", '{"reason": "funds", "until": 1}')
    again = store.claim_to_send(["a", "b"], lease="L1", lease_seconds=30, pause_key="sms:pause:demo")
    assert again.pause is not None
    assert [m.id for m in again.messages] == ["a"]  # held already; "b" is not claimed while paused
    assert redis_client.hget("sms:msg:b", "state") == "QUEUED"


def test_a_claimed_record_that_cannot_be_read_is_named_not_dropped(store, redis_client):
    store.create([queued("a")])
    redis_client.hset("sms:msg:bad", mapping={"state": "QUEUED", "id": "bad", "attempts": "many"})  # by hand
    claim = store.claim_to_send(["bad", "a"], lease="L1", lease_seconds=30, pause_key="sms:pause:none")
    assert [m.id for m in claim.messages] == ["a"] and claim.unreadable == ("bad",)


def _checked(message_id: str, **fields: object) -> Message:
    message = queued(message_id)
    message.phone_checked = True
    for name, value in fields.items():
        setattr(message, name, value)
    return message


@pytest.mark.parametrize(
    "why",
    ["not checked by our producer", "opted out", "expired", "claimed already (a claim run again)"],
)
def test_a_claim_marks_in_flight_and_takes_a_slot_only_for_messages_the_worker_sends_as_they_are(
    store, redis_client, why
):
    from core.store import Slot

    slot = Slot("sms:limiter:demo", 1_000)
    store.create([_checked("fine")])
    claim = store.claim_to_send(["fine"], lease="L1", lease_seconds=30, pause_key="sms:pause:none", slot=slot,
                                max_wait=0.02)  # fmt: skip
    assert claim.marked_wait == 0 and claim.next_slot_in is None
    assert redis_client.hget("sms:msg:fine", "inflight") == "1" and claim.messages[0].inflight
    taken = redis_client.get("sms:limiter:demo")
    assert taken is not None

    odd = {
        "not checked by our producer": queued("odd"),
        "opted out": _checked("odd", phone="37060000009"),
        "expired": _checked("odd", valid_until=time.time() - 1),
        "claimed already (a claim run again)": _checked("odd"),
    }[why]
    store.create([odd])
    store.opt_out("37060000009")
    if why.startswith("claimed already"):
        store.claim_to_send(["odd"], lease="L2", lease_seconds=30, pause_key="sms:pause:none")
    claim = store.claim_to_send(["odd"], lease="L2", lease_seconds=30, pause_key="sms:pause:none", slot=slot,
                                max_wait=0.02)  # fmt: skip
    assert [m.id for m in claim.messages] == ["odd"]  # claimed all the same, for the worker to decide
    assert claim.marked_wait is None and claim.next_slot_in is None
    assert redis_client.hget("sms:msg:odd", "inflight") == "0"
    assert redis_client.get("sms:limiter:demo") == taken  # no slot spent


def test_a_claim_marks_many_only_when_they_go_in_one_send_php_call(store, redis_client):
    from core.store import Slot

    slot = Slot("sms:limiter:demo", 1_000)
    one_call = [_checked("a1", phone="37060000001"), _checked("a2", phone="37060000002")]
    two_texts = [_checked("b1", phone="37060000001"), _checked("b2", phone="37060000002", text="other")]
    one_phone = [_checked("c1", phone="37060000001"), _checked("c2", phone="37060000001")]
    store.create([*one_call, *two_texts, *one_phone])
    for group, marked in ((one_call, True), (two_texts, False), (one_phone, False)):
        ids = [m.id for m in group]
        claim = store.claim_to_send([*ids, ids[0]], lease=f"L-{ids[0]}", lease_seconds=30,
                                    pause_key="sms:pause:none", slot=slot, max_wait=0.02)  # fmt: skip
        assert [m.id for m in claim.messages] == ids  # an id asked twice is claimed once
        assert (claim.marked_wait is not None) is marked, ids
        assert {redis_client.hget(keys.message(i), "inflight") for i in ids} == {"1" if marked else "0"}


def test_a_claim_with_no_slot_near_enough_claims_without_marking_and_says_how_far_the_next_is(store, redis_client):
    from core.store import Slot

    redis_client.set("sms:limiter:demo", int((time.time() + 5) * 1_000_000), px=60_000)
    store.create([_checked("a")])
    claim = store.claim_to_send(["a"], lease="L1", lease_seconds=30, pause_key="sms:pause:none",
                                slot=Slot("sms:limiter:demo", 1_000), max_wait=0.02)  # fmt: skip
    assert [m.id for m in claim.messages] == ["a"] and claim.marked_wait is None
    assert claim.next_slot_in is not None and 4 < claim.next_slot_in <= 5
    assert redis_client.hget("sms:msg:a", "inflight") == "0"


# -- counters kept with the moves -----------------------------------------------------------------


def test_counters_move_with_their_moves_and_amounts_with_the_call_that_makes_them(store, redis_client):
    store.create([queued("a"), queued("b")])
    moves = [
        Move("a", (State.QUEUED,), State.FAILED, counter="failed:local"),
        Move("b", (State.QUEUED,), State.FAILED, counter="failed:local"),
        Move("gone", (State.QUEUED,), State.FAILED, counter="failed:local"),  # not made: not counted
    ]
    assert [ok for ok, _ in store.apply(moves, amounts={"cost_nanos": 5, "parts": 0})] == [True, True, False]
    assert redis_client.hgetall(keys.STATS) == {"failed:local": "2", "cost_nanos": "5"}
    # the same call run again (its reply was lost): nothing is moved, and nothing counted twice
    assert [ok for ok, _ in store.apply(moves, amounts={"cost_nanos": 5})] == [False, False, False]
    assert redis_client.hgetall(keys.STATS) == {"failed:local": "2", "cost_nanos": "5"}


def test_counters_over_many_chunks_are_counted_once_each(store, redis_client):
    ids = [f"m{i}" for i in range(250)]
    store.create([queued(i) for i in ids])
    moves = [Move(i, (State.QUEUED,), State.FAILED, counter="failed:local") for i in ids]
    store.apply(moves, amounts={"parts": 7})
    assert redis_client.hgetall(keys.STATS) == {"failed:local": "250", "parts": "7"}


# -- the in-flight mark with a slot of the rate limit ---------------------------------------------


def test_the_mark_takes_a_slot_only_when_one_is_near_and_a_message_is_ours(store, redis_client):
    from core.store import NoFreeSlot, Slot

    store.create([queued("a"), queued("b")])
    store.claim(["a", "b"], lease="L1", lease_seconds=30)
    slot = Slot("sms:limiter:unit", 1_000_000)  # one request a second
    ours, wait = store.begin_send_in_slot(["a"], lease="L1", lease_seconds=30, slot=slot, max_wait=0.02)
    assert (ours, wait) == ({"a"}, 0.0)
    next_slot = redis_client.get("sms:limiter:unit")
    with pytest.raises(NoFreeSlot) as refused:  # the next slot is a second away
        store.begin_send_in_slot(["b"], lease="L1", lease_seconds=30, slot=slot, max_wait=0.02)
    assert 0.9 < refused.value.seconds <= 1.0
    assert redis_client.hget("sms:msg:b", "inflight") == "0"  # nothing marked ...
    assert redis_client.get("sms:limiter:unit") == next_slot  # ... nor reserved
    # a batch no longer ours takes no slot at all
    assert store.begin_send_in_slot(["b"], lease="L2", lease_seconds=30, slot=slot, max_wait=5) == (set(), 0.0)
    assert redis_client.get("sms:limiter:unit") == next_slot
