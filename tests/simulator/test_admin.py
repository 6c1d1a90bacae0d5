"""The /_sim/ admin API and reset."""

from __future__ import annotations

import time

import pytest
import requests

from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient

PHONE = "37061234567"


def test_health(admin: Admin) -> None:
    assert admin.get("health") == {"ok": True}


def test_messages_fields(api: HandClient, admin: Admin) -> None:
    before = time.time()
    id_sms = api.send(PHONE, "Hi", sendingTime="2001-01-01 10:00")[PHONE]["id_sms"]
    [message] = admin.messages()
    assert set(message) == {"id_sms", "phone", "text", "sender", "sendingTime", "accepted_at", "status"}
    assert message["id_sms"] == id_sms and message["sendingTime"] == "2001-01-01 10:00"
    assert before - 1 <= message["accepted_at"] <= time.time() + 1


def test_requests_log(api: HandClient, admin: Admin) -> None:
    before = time.time()
    api.timestamp()
    api.send(f"{PHONE},123")
    api.json("balance")
    api.call("send", phone=PHONE, text="Hi", sender="Nobody")
    records = admin.requests()
    assert [(r["endpoint"], r["outcome"], r["phones"]) for r in records] == [
        ("timestamp", "ok", 0),
        ("send", "partial", 2),
        ("balance", "ok", 0),
        ("send", "error:9", 1),
    ]
    times = [r["time"] for r in records]
    assert times == sorted(times) and before <= times[0] <= time.time()


def test_faults_merge_and_read_back(admin: Admin) -> None:
    admin.faults(http_503_rate=0.25, variants={"int_codes": True})
    faults = admin.faults(latency_ms=5, variants={"error_shape": "phone"})
    assert (faults["http_503_rate"], faults["latency_ms"]) == (0.25, 5)
    assert faults["variants"]["int_codes"] is True and faults["variants"]["error_shape"] == "phone"
    assert admin.get("faults")["faults"] == faults
    expected_keys = {
        "latency_ms", "http_500_rate", "http_503_rate", "http_429_rate", "stall_rate", "stall_seconds",
        "reset_rate", "endpoints", "count", "phone_errors", "delivery_outcomes", "max_rps", "clock_skew",
        "trickle_rate", "trickle_interval", "reply_body", "reply_status", "reply_content_type",
        "balance", "price", "forbidden_words", "batch_limit", "senders", "variants",
    }  # fmt: skip
    assert set(faults) == expected_keys


@pytest.mark.parametrize(
    "bad",
    [{"http_503_rate": 2}, {"latency_ms": "slow"}, {"nonsense": 1}, {"balance": "lots"}, {"senders": {"X": "ok"}}],
)
def test_bad_faults_are_400_and_change_nothing(admin: Admin, bad: dict[str, object]) -> None:
    before = admin.faults()
    response = requests.post(admin.url + "faults", json=bad, timeout=5)
    assert response.status_code == 400
    assert "error" in response.json()
    assert admin.faults() == before


@pytest.mark.parametrize(
    "body",
    [
        {"messages": "x"},
        {"messages": [{"text": "no sender"}]},
        {"messages": [{"sender": "37061111111", "text": "t", "date": "today"}]},
    ],
)
def test_incoming_validation(admin: Admin, body: dict[str, object]) -> None:
    assert requests.post(admin.url + "incoming", json=body, timeout=5).status_code == 400


def test_admin_body_must_be_a_json_object(admin: Admin) -> None:
    assert requests.post(admin.url + "incoming", data=b"not json", timeout=5).status_code == 400
    assert requests.post(admin.url + "faults", json=[1], timeout=5).status_code == 400


def test_status_validation(admin: Admin) -> None:
    assert requests.post(admin.url + "status", json={"statuses": ["x"]}, timeout=5).status_code == 400


def test_unknown_and_wrong_method(admin: Admin) -> None:
    assert requests.get(admin.url + "nothing", timeout=5).status_code == 404
    assert requests.get(admin.url + "reset", timeout=5).status_code == 405
    assert requests.post(admin.url + "health", timeout=5).status_code == 405


def test_reset_restores_the_start(api: HandClient, admin: Admin) -> None:
    api.send(PHONE)
    api.json("add2stop", phone="37062345678")
    admin.post("incoming", {"messages": [{"sender": "1", "text": "t"}]})
    admin.faults(http_500_rate=1, endpoints=["status"], balance=3, senders={"Other": "completed"})
    assert admin.post("reset", {}) == {"ok": True}
    assert admin.messages() == []
    assert admin.requests() == []
    faults = admin.faults()
    assert (faults["http_500_rate"], faults["endpoints"], faults["balance"]) == (0, ["send"], 100)
    assert api.json("balance") == {"money": "100.0000", "currency": "EUR"}
    assert api.json("senders") == {"LightSMS": "completed", "Pending": "pending"}
    assert api.json("find_on_stop", phone="37062345678") == {}
    assert api.json("incoming", **{"from": "2000-01-01 00:00:00", "to": "2100-01-01 00:00:00"}) == {}
