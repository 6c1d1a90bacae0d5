"""HTTP behaviour: keep-alive, Connection: close, no delayed-ACK stalls, concurrency, bad requests."""

from __future__ import annotations

import socket
import threading
import time
from typing import BinaryIO

import requests

from simulator import Simulator
from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient, signed_query

PHONE = "37061234567"


def read_response(reader: BinaryIO) -> tuple[bytes, dict[str, str], bytes]:
    status = reader.readline()
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return status, headers, body


def raw_request(path: str, *extra_headers: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"GET {path} {version}", "Host: 127.0.0.1", *extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_path(api: HandClient) -> str:
    return "/external/get/send.php?" + signed_query(api.params(phone=PHONE, text="Hi", sender="LightSMS"), "demo-key")


def test_keep_alive_serves_many_requests_on_one_connection(sim: Simulator, api: HandClient) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        for _ in range(3):
            sock.sendall(raw_request(send_path(api)))
            status, headers, body = read_response(reader)
            assert status.startswith(b"HTTP/1.1 200")
            assert "connection" not in headers
            assert b'"error":"0"' in body


def test_connection_close_is_honoured(sim: Simulator, api: HandClient) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        sock.sendall(raw_request("/external/get/timestamp.php", "Connection: close"))
        status, headers, body = read_response(reader)
        assert status.startswith(b"HTTP/1.1 200") and body.isdigit()
        assert headers["connection"] == "close"
        assert reader.read() == b""  # the server closed its side


def test_http_1_0_without_keep_alive_closes(sim: Simulator) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        sock.sendall(raw_request("/external/get/timestamp.php", version="HTTP/1.0"))
        status, headers, _ = read_response(reader)
        assert status.startswith(b"HTTP/1.1 200") and headers["connection"] == "close"
        assert reader.read() == b""


def test_no_delayed_ack_stall_between_requests(sim: Simulator, api: HandClient) -> None:
    # Headers and body in separate writes would meet the client's delayed ACK: ~40 ms per request.
    paths = [send_path(api) for _ in range(50)]
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        for path in paths:
            sock.sendall(raw_request(path))
            assert read_response(reader)[0].startswith(b"HTTP/1.1 200")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"50 keep-alive requests took {elapsed:.2f}s"


def test_request_headers_split_across_packets(sim: Simulator) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"GET /external/get/time", b"stamp.php HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
            sock.sendall(piece)
        assert read_response(reader)[0].startswith(b"HTTP/1.1 200")


def test_concurrent_keep_alive_clients(sim: Simulator, admin: Admin) -> None:
    threads, per_thread = 8, 50
    ids: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = HandClient(sim.base_url)
        try:
            for i in range(per_thread):
                phone = f"3706{n:02d}{i:05d}"
                reply = client.send(phone)
                with lock:
                    ids.append(reply[phone]["id_sms"])
        except BaseException as exc:  # reported below, in the test thread
            failures.append(exc)
        finally:
            client.session.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert not failures, failures[:3]
    assert len(ids) == threads * per_thread
    assert len(set(ids)) == len(ids)
    assert len(admin.messages()) == len(ids)
    assert len(admin.requests("send")) == len(ids)


def test_unknown_paths_and_methods(sim: Simulator) -> None:
    assert requests.get(sim.url + "/external/get/template.php", timeout=5).status_code == 404
    assert requests.get(sim.url + "/external/get/send", timeout=5).status_code == 404
    assert requests.get(sim.url + "/", timeout=5).status_code == 404
    response = requests.post(sim.base_url + "send.php", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_bad_request_line_is_400(sim: Simulator) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock, sock.makefile("rb") as reader:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert read_response(reader)[0].startswith(b"HTTP/1.1 400")


def test_repeated_parameter_keeps_the_last_value(api: HandClient) -> None:
    params = api.params()
    query = signed_query(params, "demo-key")
    assert api.raw("balance", "return=xml&" + query).json()["currency"] == "EUR"


def test_plus_and_percent_encoding_decode_alike(api: HandClient, sim: Simulator) -> None:
    params = api.params(phone=PHONE, text="two words", sender="LightSMS")
    plus = signed_query(params, "demo-key")  # urlencode writes the space as '+'
    assert "two+words" in plus
    percent = plus.replace("two+words", "two%20words")
    assert api.raw("send", plus).json()[PHONE]["error"] == "0"
    assert api.raw("send", percent).json()[PHONE]["error"] == "0"


def test_a_refused_post_body_is_not_read_as_the_next_request(sim: Simulator) -> None:
    with requests.Session() as session:
        refused = session.post(f"{sim.base_url}send.php", data=b"x" * 64)
        assert refused.status_code == 405
        again = session.get(f"{sim.base_url}timestamp.php")  # the same keep-alive connection
        assert again.status_code == 200 and again.text.strip().isdigit()
