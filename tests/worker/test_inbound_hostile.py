"""poll_incoming against what a hostile provider or a broker that lost its data can do: nothing
lost, nothing published twice, and one bad item never stops the others."""

from __future__ import annotations

import json
import time

from core import keys

from .inbound_support import drain, local, make_poller
from .test_inbound_poller import OURS, SENDER, env, inject  # noqa: F401 - env is a fixture

__all__ = ["env"]


def test_an_endless_id_and_a_lone_surrogate_are_set_aside_and_the_rest_published(env):  # noqa: F811
    settings, redis_client, admin = env
    now = time.time()
    good = {"sender": SENDER, "phone": OURS, "prefix": "51632"}
    body = (
        "{"
        f'"9001": {json.dumps({**good, "date": local(now - 30), "text": "first"})}, '
        f'"{"7" * 5000}": {json.dumps({**good, "date": local(now - 20), "text": "an id of 5000 digits"})}, '
        f'"9003": {{"sender": "{SENDER}", "text": "no date and a lone surrogate \\ud800"}}, '
        f'"9004": {json.dumps({**good, "date": local(now - 10), "text": "last"})}'
        "}"
    )
    admin.faults(endpoints=["incoming"], reply_body=body)
    assert make_poller(settings).poll() == {"published": 2, "rejected": 2}
    assert [e["id"] for e in drain(settings.broker_url)] == ["9001", "9004"]
    rejected = [json.loads(raw) for raw in redis_client.lrange(keys.INBOUND_REJECTED, 0, -1)]
    assert sorted(r["reason"] for r in rejected) == ["an id too long to be one", "missing date"]
    assert all(len(key) < 200 for key in redis_client.keys(keys.PREFIX + "inbound:seen:*"))
    assert redis_client.get(keys.INBOUND_CURSOR) is not None


def test_a_broker_that_lost_its_bindings_still_gets_every_event(env):  # noqa: F811
    settings, redis_client, admin = env
    poller = make_poller(settings)
    [first] = inject(admin, "before")
    assert poller.poll() == {"published": 1}
    # A broker Redis restarted empty (or failed over) has lost kombu's binding sets; this poller's
    # publisher declared its queue long ago and would not declare it again.
    for key in redis_client.keys("_kombu.binding.*"):
        redis_client.delete(key)
    [second] = inject(admin, "after")
    assert poller.poll() == {"published": 1, "duplicates": 1}
    assert [e["id"] for e in drain(settings.broker_url)] == [first, second]


def test_a_lock_lost_during_the_request_publishes_nothing(env):  # noqa: F811
    settings, redis_client, admin = env
    inject(admin, "one", "two")
    poller = make_poller(settings)
    ask = poller.client.incoming

    def slow_incoming(**window):  # the lock runs out while incoming.php answers, and another poller takes it
        found = ask(**window)
        redis_client.set(keys.poll_lock("incoming"), "the-next-poller")
        return found

    poller.client.incoming = slow_incoming  # type: ignore[method-assign]
    counts = poller.poll()
    assert counts.get("published", 0) == 0 and counts["lock_lost"] == 1
    assert drain(settings.broker_url) == [] and redis_client.get(keys.INBOUND_CURSOR) is None
