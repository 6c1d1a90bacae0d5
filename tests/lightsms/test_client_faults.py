"""Transport faults and clock trouble, against the simulator over real sockets."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lightsms import errors
from lightsms.client import LightSmsClient
from lightsms.clock import ServerClock
from lightsms.codes import Outcome

from .conftest import PHONE_A, PHONE_B, SENDER, ClientFactory, Sim


def _send_outcomes(sim: Sim) -> list[str]:
    return [entry["outcome"] for entry in sim.requests("send")]


def test_http_500_is_ambiguous(client: LightSmsClient, sim: Sim) -> None:
    client.balance()  # the clock is synced; the fault hits send.php itself
    sim.admin.faults(http_500_rate=1.0, count=1)
    with pytest.raises(errors.AmbiguousError, match="HTTP 500"):
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert _send_outcomes(sim) == ["http:500"]
    assert client.send([PHONE_A], "Hi", sender=SENDER)[0].accepted  # count=1: the next one goes through


@pytest.mark.parametrize(("fault", "status"), [("http_503_rate", 503), ("http_429_rate", 429)])
def test_503_and_429_are_throttled_not_sent(client: LightSmsClient, sim: Sim, fault: str, status: int) -> None:
    client.balance()
    sim.admin.faults(**{fault: 1.0}, count=1)
    with pytest.raises(errors.ThrottledError) as caught:
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert isinstance(caught.value, errors.NotSentError)
    assert f"HTTP {status}" in str(caught.value)
    assert sim.admin.messages() == []


def test_rate_limit_429_carries_retry_after(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client()
    client.balance()
    sim.admin.faults(max_rps=1)
    with pytest.raises(errors.ThrottledError) as caught:
        for _ in range(5):  # 1 request per second allowed: one of these is refused
            client.balance()
    assert caught.value.retry_after == 1.0
    assert "throttled" in [entry["outcome"] for entry in sim.requests()]


def test_stall_past_the_read_timeout_is_ambiguous_although_accepted(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client(timeout=(1.0, 0.5))
    client.balance()
    sim.admin.faults(stall_rate=1.0, stall_seconds=1.0, count=1)
    started = time.monotonic()
    with pytest.raises(errors.AmbiguousError, match="read timeout"):
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert time.monotonic() - started < 0.95  # gave up at the read timeout, did not wait for the reply
    assert _send_outcomes(sim) == ["stall"]
    assert [m["phone"] for m in sim.admin.messages()] == [PHONE_A]  # the simulator did accept it


def test_reset_after_accept_is_ambiguous(client: LightSmsClient, sim: Sim) -> None:
    client.balance()
    sim.admin.faults(reset_rate=1.0, count=1)
    with pytest.raises(errors.AmbiguousError, match="lost after the request was written"):
        client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)
    assert _send_outcomes(sim) == ["reset"]
    assert len(sim.admin.messages()) == 2
    assert all(r.accepted for r in client.send([PHONE_A], "again", sender=SENDER))  # the pool recovers


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def test_closed_port_is_connect_error(make_client: ClientFactory) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}/external/get/")
    with pytest.raises(errors.ConnectError, match="timestamp.php: connection refused"):
        client.send([PHONE_A], "Hi", sender=SENDER)  # the first clock sync already fails
    client.clock = ServerClock(lambda: int(time.time()))  # a clock that needs no server
    with pytest.raises(errors.ConnectError, match="send.php: connection refused") as caught:
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert isinstance(caught.value, errors.NotSentError)


@pytest.mark.parametrize("fault", [{"http_500_rate": 1.0}, {"stall_rate": 1.0, "stall_seconds": 1.0}])
def test_a_failed_first_clock_sync_means_the_send_was_not_sent(make_client: ClientFactory, sim: Sim, fault) -> None:
    sim.admin.faults(endpoints=["timestamp"], count=1, **fault)
    client = make_client(timeout=(1.0, 0.5))
    with pytest.raises(errors.NotSentError, match="could not read LightSMS's clock"):
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert sim.endpoints() == ["timestamp"]  # send.php never reached
    assert client.send([PHONE_A], "Hi", sender=SENDER)[0].accepted  # the next attempt syncs and sends


def test_clock_skew_is_resynced_once_and_the_send_succeeds(client: LightSmsClient, sim: Sim) -> None:
    client.balance()  # clock synced without skew
    sim.admin.faults(clock_skew=120)
    (result,) = client.send([PHONE_A], "Hi", sender=SENDER)
    assert result.accepted
    after_skew = [(e["endpoint"], e["outcome"]) for e in sim.requests()][2:]
    assert after_skew == [("send", "error:6"), ("timestamp", "ok"), ("send", "accepted")]
    client.send([PHONE_B], "Hi", sender=SENDER)
    assert sim.endpoints().count("timestamp") == 2  # the new offset is kept: no fetch per request


def test_concurrent_refusals_share_one_resync(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client()
    client.balance()
    sim.admin.faults(clock_skew=120)
    start = threading.Barrier(4)

    def send_one(phone: str) -> bool:
        start.wait(5)
        return client.send([phone], "Hi", sender=SENDER)[0].accepted

    with ThreadPoolExecutor(4) as pool:
        accepted = list(pool.map(send_one, [PHONE_A, PHONE_B, "37063456789", "37064567890"]))
    assert accepted == [True] * 4
    assert sim.endpoints().count("timestamp") == 2  # the first sync, and one resync for all four


def test_clock_skew_with_the_error_under_each_phone(client: LightSmsClient, sim: Sim) -> None:
    client.balance()
    sim.admin.faults(clock_skew=-300, variants={"error_shape": "phone"})
    assert [r.accepted for r in client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)] == [True, True]
    assert sim.endpoints().count("timestamp") == 2


def test_signature_refused_after_a_resync_is_invalid_login(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client(api_key="wrong-key")
    with pytest.raises(errors.InvalidLoginError) as caught:
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert isinstance(caught.value, errors.AccountError)
    assert caught.value.code == 6
    assert sim.endpoints() == ["timestamp", "send", "timestamp", "send"]
    assert sim.admin.messages() == []


def test_clock_resync_failure_is_not_sent(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client()
    client.balance()
    sim.admin.faults(clock_skew=120, http_500_rate=1.0, endpoints=["timestamp"], count=1)
    with pytest.raises(errors.ClockRejectedError, match="resync failed"):
        client.send([PHONE_A], "Hi", sender=SENDER)
    assert sim.admin.messages() == []
    assert client.send([PHONE_A], "Hi", sender=SENDER)[0].accepted  # next time the resync works


def test_unknown_login_is_invalid_login_without_resync(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client(login="nobody")
    with pytest.raises(errors.InvalidLoginError) as caught:
        client.balance()
    assert caught.value.code == 7
    assert sim.endpoints() == ["timestamp", "balance"]


def test_a_base_url_that_is_not_the_api_is_provider_unavailable_not_sent(make_client: ClientFactory, sim: Sim) -> None:
    wrong = make_client(base_url=sim.base_url.replace("/external/get/", "/nothing/here/"))
    with pytest.raises(errors.ProviderUnavailableError, match="404") as caught:
        wrong.send([PHONE_A], "Hi", sender=SENDER)
    assert isinstance(caught.value, errors.AccountError)  # pause everyone; not a per-message failure
    assert sim.admin.messages() == []


def test_a_page_instead_of_a_timestamp_is_provider_unavailable(make_client: ClientFactory, sim: Sim) -> None:
    sim.admin.faults(endpoints=["timestamp"], reply_body="<html><body>Maintenance</body></html>",
                     reply_content_type="text/html")  # fmt: skip
    with pytest.raises(errors.ProviderUnavailableError, match="timestamp.php"):
        make_client().send([PHONE_A], "Hi", sender=SENDER)
    assert sim.admin.messages() == []


def test_an_outage_page_that_starts_mid_run_is_found_out_by_the_next_request(
    make_client: ClientFactory, sim: Sim
) -> None:
    client = make_client()
    assert client.send([PHONE_A], "Hi", sender=SENDER)[0].accepted  # the clock is synced and fresh
    sim.admin.faults(endpoints=["send", "timestamp"], reply_body="<html><body>Down for maintenance</body></html>",
                     reply_content_type="text/html")  # fmt: skip
    # this one reached the page: it may or may not have been sent (well-formed XHTML reads as a reply
    # that names no phone)
    [result] = client.send([PHONE_B], "Hi", sender=SENDER)
    assert result.outcome is Outcome.AMBIGUOUS
    with pytest.raises(errors.ProviderUnavailableError, match="timestamp.php"):
        client.send([PHONE_B], "Hi", sender=SENDER)  # asks timestamp.php first, and finds the page
    assert len(sim.requests("send")) == 2


def test_ready_reads_the_clock_only_when_due_and_leaves_a_failure_to_the_request(make_client: ClientFactory,
                                                                                 sim: Sim) -> None:  # fmt: skip
    client = make_client()
    client.ready()
    client.ready()  # fresh: not asked again
    assert sim.endpoints() == ["timestamp"]
    client.send([PHONE_A], "Hi", sender=SENDER)  # signs with the clock read before: no timestamp.php first
    assert sim.endpoints() == ["timestamp", "send"]
    cold = make_client()
    sim.admin.faults(endpoints=["timestamp"], http_500_rate=1.0, count=1)
    cold.ready()  # LightSMS's clock unreadable: nothing raised here
    with pytest.raises(errors.NotSentError, match="could not read LightSMS's clock"):
        sim.admin.faults(endpoints=["timestamp"], http_500_rate=1.0, count=1)
        cold.send([PHONE_A], "Hi", sender=SENDER)
