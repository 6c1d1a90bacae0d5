"""Hostile replies after a real accept: a reply trickled a byte at a time (trickle_rate,
trickle_interval) and an injected reply (reply_body, reply_status, reply_content_type)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from simulator import SimConfig, Simulator, run_in_thread
from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient, signed_query
from tests.support.polling import wait_until

PHONE, PHONE2 = "37061234567", "37062345678"


@contextmanager
def raw_send(sim: Simulator, api: HandClient, phone: str = PHONE) -> Iterator[socket.socket]:
    """A socket that has written one signed send.php request and has read nothing yet."""
    query = signed_query(api.params(phone=phone, text="Hi", sender="LightSMS"), api.api_key)
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        sock.sendall(f"GET /external/get/send.php?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        yield sock


def read_reply(sock: socket.socket) -> tuple[bytes, list[bytes]]:
    """The whole reply (head and Content-Length body) and the pieces recv returned."""
    pieces: list[bytes] = []
    data = b""
    while True:
        piece = sock.recv(65536)
        assert piece, f"connection closed after {data!r}"
        pieces.append(piece)
        data += piece
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
            if len(body) >= length:
                return data, pieces


def handler_threads() -> int:
    return len(_handlers())


def _handlers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


# --- trickle ------------------------------------------------------------------------------------


def test_trickle_writes_the_whole_reply_a_byte_at_a_time_after_accepting(
    sim: Simulator, api: HandClient, admin: Admin
) -> None:
    interval = 0.005
    admin.faults(trickle_rate=1, trickle_interval=interval, count=1)
    with raw_send(sim, api) as sock:
        started = time.monotonic()
        reply, pieces = read_reply(sock)
        elapsed = time.monotonic() - started
    assert pieces[0] == b"H"  # the status line too is trickled
    assert elapsed >= (len(reply) - 1) * interval
    assert len(pieces) > len(reply) // 2  # byte by byte, give or take a scheduling hiccup
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Type: application/json" in head
    [message] = admin.messages()  # processed normally: accepted and recorded
    assert json.loads(body)[PHONE] | {"error": "0", "id_sms": message["id_sms"]} == json.loads(body)[PHONE]
    assert [r["outcome"] for r in admin.requests("send")] == ["trickle"]
    assert api.send(PHONE2)[PHONE2]["error"] == "0"  # count spent: answered at once


def test_trickle_stops_when_the_client_hangs_up(sim: Simulator, api: HandClient, admin: Admin) -> None:
    admin.faults(trickle_rate=1, trickle_interval=0.1)  # a whole reply would take ~20 s
    # By identity, not by count: a handler of an earlier test ending meanwhile must not look like ours.
    before = set(_handlers())
    with raw_send(sim, api) as sock:
        assert sock.recv(1) == b"H"
        ours = wait_until(lambda: [t for t in _handlers() if t not in before], timeout=2,
                          message="the trickling handler")  # fmt: skip
    # Hung up: the handler notices on its next writes and ends, well before the reply is done.
    wait_until(lambda: not any(t.is_alive() for t in ours), timeout=3, message="the handler to give up")
    assert len(admin.messages()) == 1


def test_trickle_stops_when_the_server_stops(api: HandClient) -> None:
    before = handler_threads()
    config = SimConfig(login="demo", api_key="demo-key", seed=7)
    with run_in_thread(config) as own:
        own_admin = Admin(own.admin_url)
        own_admin.faults(trickle_rate=1, trickle_interval=1.0)
        own_admin.session.close()
        own_api = HandClient(own.base_url)
        with raw_send(own, own_api) as sock:
            assert sock.recv(1) == b"H"
            started = time.monotonic()
            own.stop()
            assert sock.recv(65536) == b""  # closed at once, not after the next byte is due
            assert time.monotonic() - started < 1.0
        own_api.session.close()
    wait_until(lambda: handler_threads() <= before, timeout=3, message="the handler to end with the server")


def test_trickle_honours_endpoints_and_count(api: HandClient, admin: Admin) -> None:
    admin.faults(trickle_rate=1, trickle_interval=0.001, count=1, endpoints=["balance"])
    assert api.send(PHONE)[PHONE]["error"] == "0"
    assert api.json("balance")["currency"] == "EUR"  # trickled, but complete
    assert api.json("balance")["currency"] == "EUR"
    assert [r["outcome"] for r in admin.requests()] == ["accepted", "trickle", "ok"]
    assert admin.faults()["count"] == 0


def test_a_trickled_reply_outlasts_a_read_timeout_that_never_fires(api: HandClient, admin: Admin) -> None:
    """Why the fault exists: each byte comes well within requests' read timeout, so a client
    without a total deadline keeps waiting; here the whole reply takes >= 0.5 s, the timeout 0.3 s."""
    admin.faults(trickle_rate=1, trickle_interval=0.003, count=1)
    started = time.monotonic()
    reply = api.call("send", phone=PHONE, text="Hi", sender="LightSMS", timeout=0.3)
    assert time.monotonic() - started > 0.5
    assert reply.json()[PHONE]["error"] == "0"


# --- reply_body -----------------------------------------------------------------------------------


def test_reply_body_replaces_the_reply_after_a_real_accept(api: HandClient, admin: Admin) -> None:
    hostile = '{"37061234567": {"error": "0", "id_sms": null}} trailing'
    faults = admin.faults(reply_body=hostile, count=1)
    assert (faults["reply_body"], faults["reply_status"], faults["reply_content_type"]) == (
        hostile, 200, "application/json",
    )  # fmt: skip
    reply = api.call("send", phone=PHONE, text="Hi", sender="LightSMS")
    assert (reply.status_code, reply.text, reply.headers["Content-Type"]) == (200, hostile, "application/json")
    assert [m["phone"] for m in admin.messages()] == [PHONE]  # accepted and recorded all the same
    assert [r["outcome"] for r in admin.requests("send")] == ["reply:accepted"]
    assert api.send(PHONE2)[PHONE2]["error"] == "0"  # count spent: the real reply again


def test_reply_status_and_content_type(api: HandClient, admin: Admin) -> None:
    admin.faults(reply_body="<html><body>Bad gateway</body></html>", reply_status=502, reply_content_type="text/html")
    reply = api.call("send", phone=PHONE, text="Hi", sender="LightSMS")
    assert (reply.status_code, reply.headers["Content-Type"]) == (502, "text/html")
    assert reply.text == "<html><body>Bad gateway</body></html>"
    assert len(admin.messages()) == 1
    admin.faults(reply_body="", reply_status=299)  # no standard phrase; an empty body
    reply = api.call("send", phone=PHONE2, text="Hi", sender="LightSMS")
    assert (reply.status_code, reply.reason, reply.content) == (299, "Unknown", b"")
    admin.faults(reply_body=None)
    assert api.send(PHONE)[PHONE]["error"] == "0"
    assert len(admin.messages()) == 3


def test_reply_body_honours_endpoints(api: HandClient, admin: Admin) -> None:
    admin.faults(reply_body="not a number", endpoints=["timestamp", "balance"])
    assert api.session.get(api.base_url + "timestamp.php", timeout=5).text == "not a number"
    assert api.call("balance").text == "not a number"
    assert api.send(PHONE)[PHONE]["error"] == "0"  # send is not listed


def test_reply_body_can_be_trickled(sim: Simulator, api: HandClient, admin: Admin) -> None:
    admin.faults(reply_body='{"x": 1}', trickle_rate=1, trickle_interval=0.001, count=1)
    with raw_send(sim, api) as sock:
        reply, pieces = read_reply(sock)
    assert pieces[0] == b"H" and reply.endswith(b'\r\n\r\n{"x": 1}')
    assert [r["outcome"] for r in admin.requests("send")] == ["trickle"]
    assert len(admin.messages()) == 1


@pytest.mark.parametrize(
    "bad",
    [{"trickle_rate": 1.5}, {"trickle_rate": "often"}, {"trickle_interval": -0.1}, {"trickle_interval": 61},
     {"reply_body": 5}, {"reply_body": ["x"]}, {"reply_status": 99}, {"reply_status": 600}, {"reply_status": "200"},
     {"reply_status": True}, {"reply_status": 200.0}, {"reply_content_type": ""},
     {"reply_content_type": "text/plain\r\nX-Injected: 1"}, {"reply_content_type": None}],
)  # fmt: skip
def test_bad_hostile_faults_are_400_and_change_nothing(admin: Admin, bad: dict[str, object]) -> None:
    before = admin.faults()
    response = requests.post(admin.url + "faults", json=bad, timeout=5)
    assert response.status_code == 400
    assert next(iter(bad)) in response.json()["error"]
    assert admin.faults() == before


def test_defaults_and_reset(admin: Admin) -> None:
    faults = admin.faults()
    assert (faults["trickle_rate"], faults["trickle_interval"]) == (0, 0.3)
    assert (faults["reply_body"], faults["reply_status"], faults["reply_content_type"]) == (
        None, 200, "application/json",
    )  # fmt: skip
    admin.faults(trickle_rate=0.5, trickle_interval=0.01, reply_body="x", reply_status=500)
    admin.post("reset", {})
    assert admin.faults() == faults
