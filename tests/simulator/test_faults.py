"""Injected faults: HTTP errors, stalls, resets, per-phone codes, rate limit, clock skew, balance."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from simulator import Simulator
from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient, signed_query
from tests.support.polling import wait_until

PHONE, PHONE2 = "37061234567", "37062345678"


@pytest.mark.parametrize(("fault", "status"), [("http_500_rate", 500), ("http_503_rate", 503), ("http_429_rate", 429)])
def test_http_error_rate_with_count(api: HandClient, admin: Admin, fault: str, status: int) -> None:
    admin.faults(**{fault: 1, "count": 2})
    codes = [api.call("send", phone=PHONE, text="Hi", sender="LightSMS").status_code for _ in range(3)]
    assert codes == [status, status, 200]
    assert len(admin.messages()) == 1  # the failed requests were not processed
    outcomes = [r["outcome"] for r in admin.requests("send")]
    assert outcomes == [f"http:{status}", f"http:{status}", "accepted"]
    assert admin.faults()["count"] == 0


def test_rate_faults_apply_only_to_listed_endpoints(api: HandClient, admin: Admin) -> None:
    admin.faults(http_503_rate=1)
    assert api.call("balance").status_code == 200
    assert api.call("send", phone=PHONE, text="Hi", sender="LightSMS").status_code == 503
    admin.faults(endpoints=["balance.php", "status"])
    assert api.call("balance").status_code == 503
    assert api.call("send", phone=PHONE, text="Hi", sender="LightSMS").status_code == 200


def test_count_is_spent_only_by_matching_requests(api: HandClient, admin: Admin) -> None:
    admin.faults(http_500_rate=1, count=1)
    assert api.call("balance").status_code == 200
    assert api.call("send", phone=PHONE, text="Hi", sender="LightSMS").status_code == 500
    assert api.call("send", phone=PHONE, text="Hi", sender="LightSMS").status_code == 200


def test_partial_rate_fails_some_requests(api: HandClient, admin: Admin) -> None:
    admin.faults(http_503_rate=0.5, endpoints=["balance"])
    codes = [api.call("balance").status_code for _ in range(100)]
    assert set(codes) == {200, 503}
    assert 20 <= codes.count(503) <= 80  # p(outside) ~ 1e-9


def test_stall_past_read_timeout_records_the_send(api: HandClient, admin: Admin) -> None:
    admin.faults(stall_rate=1, stall_seconds=2, count=1)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        api.call("send", phone=PHONE, text="Hi", sender="LightSMS", timeout=0.3)
    assert time.monotonic() - started < 1.5
    [message] = admin.messages()
    assert message["phone"] == PHONE
    assert [r["outcome"] for r in admin.requests("send")] == ["stall"]
    assert api.send(PHONE2)[PHONE2]["error"] == "0"  # count spent: the next one is answered at once


def test_stall_answers_after_stall_seconds(api: HandClient, admin: Admin) -> None:
    admin.faults(stall_rate=1, stall_seconds=0.4, count=1)
    started = time.monotonic()
    reply = api.send(PHONE)
    assert time.monotonic() - started >= 0.4
    assert reply[PHONE]["id_sms"] == admin.messages()[0]["id_sms"]


def test_reset_after_accepting(api: HandClient, admin: Admin) -> None:
    admin.faults(reset_rate=1, count=1)
    with pytest.raises(requests.ConnectionError):
        api.call("send", phone=PHONE, text="Hi", sender="LightSMS")
    assert [m["phone"] for m in admin.messages()] == [PHONE]
    assert [r["outcome"] for r in admin.requests("send")] == ["reset"]
    assert api.send(PHONE2)[PHONE2]["error"] == "0"


def test_reset_is_a_tcp_rst_not_a_clean_close(sim: Simulator, api: HandClient, admin: Admin) -> None:
    admin.faults(reset_rate=1, count=1)
    query = signed_query(api.params(phone=PHONE, text="Hi", sender="LightSMS"), "demo-key")
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        sock.sendall(f"GET /external/get/send.php?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            while sock.recv(4096):
                pass
    assert len(admin.messages()) == 1


def test_phone_errors(api: HandClient, admin: Admin) -> None:
    admin.faults(phone_errors={PHONE: 12})
    admin.faults(phone_errors={PHONE2: 34})  # replaces the map, as any key does
    reply = api.send(f"{PHONE},{PHONE2}")
    assert reply[PHONE]["error"] == "0"
    assert reply[PHONE2] == {"error": "34"}
    root = api.call("send", "xml", phone=PHONE2, text="Hi", sender="LightSMS").text
    assert f'<phone phone="{PHONE2}" error="34" />' in root


def test_max_rps_answers_429_beyond_the_window(api: HandClient, admin: Admin) -> None:
    admin.faults(max_rps=5)
    responses = [api.call("balance") for _ in range(12)]
    codes = [r.status_code for r in responses]
    assert codes[:5] == [200] * 5
    assert codes.count(429) >= 6  # all but those that fall after the first second frees up
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"
    assert "throttled" in [r["outcome"] for r in admin.requests("balance")]
    assert api.session.get(api.base_url + "timestamp.php", timeout=5).status_code == 200  # not counted
    wait_until(lambda: api.call("balance").status_code == 200, timeout=3, message="window to free up")
    admin.faults(max_rps=None)
    assert all(api.call("balance").status_code == 200 for _ in range(10))


def test_clock_skew_moves_timestamp_and_the_6_check(api: HandClient, admin: Admin) -> None:
    admin.faults(clock_skew=3600)
    server_now = int(api.timestamp())
    assert abs(server_now - (time.time() + 3600)) <= 2
    assert api.call("balance").json() == {"error": "6"}  # our own clock is an hour behind
    assert api.json("balance", timestamp=str(server_now))["currency"] == "EUR"


def test_clock_skew_moves_incoming_default_date(api: HandClient, admin: Admin) -> None:
    admin.faults(clock_skew=-2 * 86400)
    [sms_id] = admin.post("incoming", {"messages": [{"sender": "37061111111", "text": "hi"}]})["ids"]
    skewed_day = (datetime.now(ZoneInfo("Europe/Vilnius")) - timedelta(days=2)).strftime("%Y-%m-%d")
    found = api.json("incoming", timestamp=api.timestamp(), date=skewed_day)
    assert list(found) == [sms_id]


def test_balance_fault(api: HandClient, admin: Admin) -> None:
    assert admin.faults(balance=0)["balance"] == 0
    assert api.json("balance")["money"] == "0.0000"
    assert api.send(PHONE) == {PHONE: {"error": "32"}}
    admin.faults(balance=1)
    assert api.send(PHONE)[PHONE]["error"] == "0"


def test_latency(api: HandClient, admin: Admin) -> None:
    admin.faults(latency_ms=300, endpoints=["balance"])
    started = time.monotonic()
    assert api.call("balance").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    api.send(PHONE)
    assert time.monotonic() - started < 0.3
