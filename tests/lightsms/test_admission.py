"""LightSmsClient's `admission`: entered around every signed request (what LightSMS counts), never
around timestamp.php; a refusal (NotSentError) means nothing reached LightSMS."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from lightsms.errors import ConnectError, NotSentError
from tests.lightsms.conftest import PHONE_A, SENDER, ClientFactory, Sim


def test_every_signed_request_is_inside_the_admission_and_the_clock_is_not(make_client: ClientFactory, sim: Sim):
    seen: list[tuple[str, int, int]] = []  # endpoint; requests the simulator had on entering, on leaving

    @contextlib.contextmanager
    def admission(endpoint: str) -> Iterator[None]:
        before = len(sim.requests())
        yield
        seen.append((endpoint, before, len(sim.requests())))

    client = make_client(admission=admission)
    [result] = client.send([PHONE_A], "hello", sender=SENDER)
    client.status([result.id_sms])
    assert [endpoint for endpoint, _, _ in seen] == ["send.php", "status.php"]
    assert sim.endpoints() == ["timestamp", "send", "status"]  # the clock first, outside
    # entered before its request reached the simulator, left after: the request in between
    assert [(before, after) for _, before, after in seen] == [(1, 2), (2, 3)]


def test_a_refused_admission_sends_nothing_and_raises_as_it_is(make_client: ClientFactory, sim: Sim):
    class Refused(NotSentError):
        pass

    def admission(endpoint: str) -> contextlib.AbstractContextManager[None]:
        raise Refused(f"{endpoint} not sent: no room")

    client = make_client(admission=admission)
    with pytest.raises(Refused, match="send.php not sent: no room"):
        client.send([PHONE_A], "hello", sender=SENDER)
    assert "send" not in sim.endpoints()


def test_a_request_past_the_moment_its_admission_covers_is_never_written(make_client: ClientFactory, sim: Sim):
    @contextlib.contextmanager
    def admitted_long_ago(endpoint: str) -> Iterator[float]:
        yield time.monotonic() - 60  # a place good for a request written by a minute ago (a paused process)

    client = make_client(admission=admitted_long_ago, deadline=5.0)
    with pytest.raises(ConnectError, match="send.php: not written: too late for its place in the rate limit; not sent"):
        client.send([PHONE_A], "hello", sender=SENDER)
    assert "send" not in sim.endpoints()
