"""The total deadline per request: whatever a server does (trickled headers or body, a body that never
ends, silence, a trickled TLS handshake), Transport.get returns a classified error within the
deadline, on real loopback sockets; and a deadline is per request, not per connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from lightsms import errors
from lightsms.client import LightSmsClient
from lightsms.deadline import Ticket, watchdog
from lightsms.transport import Transport, classify_exception
from tests.support.polling import wait_until
from tests.support.sim_process import SimAdmin, SimProcess

from .test_transport import SECRET_QUERY, saturated_listener

DEADLINE = 1.0
MARGIN = 1.5
# Long enough that no single read times out: only the deadline can end these requests.
TIMEOUT = (2.0, 5.0)
TRICKLE = 0.1  # seconds between bytes
GIVE_UP = 8.0  # a server stops misbehaving after this long, so a broken deadline fails, not hangs

Handler = Callable[[socket.socket, threading.Event], None]


@contextmanager
def server(handle: Handler) -> Iterator[str]:
    """A loopback server: one connection at a time, the request read, then `handle(conn, stop)`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    address = listener.getsockname()

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                if stop.is_set():
                    return
                _read_request(conn)
                with suppress(OSError):  # the client hung up
                    handle(conn, stop)

    thread = threading.Thread(target=serve, name="test-deadline-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{address[1]}/external/get/send.php"
    finally:
        stop.set()
        socket.create_connection(address, timeout=2).close()  # wakes accept()
        thread.join(GIVE_UP + 2)
        assert not thread.is_alive()
        listener.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def trickle(data: bytes, *, head: bytes = b"", interval: float = TRICKLE) -> Handler:
    """Send `head` at once, then `data` one byte per `interval` (until GIVE_UP or stopped)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(head)
        started = time.monotonic()
        for index in range(len(data)):
            conn.sendall(data[index : index + 1])
            if stop.wait(interval) or time.monotonic() - started > GIVE_UP:
                return

    return handle


def endless(head: bytes, chunk: bytes, *, interval: float = 0.0, limit: int = 64 * 1024 * 1024) -> Handler:
    """Headers, then `chunk` again and again (every `interval` s), up to `limit` bytes or GIVE_UP."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head)
        started, sent = time.monotonic(), 0
        while sent < limit and not stop.is_set() and time.monotonic() - started < GIVE_UP:
            conn.sendall(chunk)
            sent += len(chunk)
            if interval:
                stop.wait(interval)

    return handle


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Reads the request and never answers."""
    stop.wait(GIVE_UP)


BODY = b'{"37061234567": {"error": "0"}}'
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n" + BODY


@contextmanager
def no_leaked_threads() -> Iterator[None]:
    """Threads after the block are those before it, plus at most the one deadline watchdog."""
    before = set(threading.enumerate())
    yield
    extra = set(threading.enumerate()) - before
    assert extra <= {watchdog.thread}, extra


def assert_clean(error: errors.LightSmsError) -> None:
    for secret in SECRET_QUERY.values():
        assert secret not in str(error)
    assert error.__cause__ is None and error.__context__ is None


def timed_get(transport: Transport, url: str) -> tuple[float, errors.LightSmsError | None]:
    started = time.monotonic()
    try:
        transport.get(url, SECRET_QUERY, endpoint="send.php")
    except errors.LightSmsError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


AFTER_WRITE: list[tuple[str, Handler]] = [
    ("trickled status line and headers", trickle(REPLY)),
    ("trickled headers after the status line", trickle(REPLY[17:], head=REPLY[:17])),
    ("trickled body with Content-Length",
     trickle(BODY, head=b"HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n")),
    ("trickled body to connection close",  # cut short by the deadline, it would look complete
     trickle(BODY, head=b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")),
    ("trickled chunked body",
     trickle(b"1f\r\n" + BODY + b"\r\n0\r\n\r\n",
             head=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")),
    ("steady body under the size cap",  # 100 KiB/s: never over 4 MiB within the deadline
     endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"400\r\n" + b"x" * 1024 + b"\r\n",
             interval=0.01)),
    ("trickled 503", trickle(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")),
    ("accepted and never answered", silent),
]  # fmt: skip


@pytest.mark.parametrize("handle", [h for _, h in AFTER_WRITE], ids=[name for name, _ in AFTER_WRITE])
def test_deadline_after_the_request_was_written_is_ambiguous(handle: Handler) -> None:
    with no_leaked_threads():
        transport = Transport(timeout=TIMEOUT, deadline=DEADLINE)
        with server(handle) as url:
            elapsed, error = timed_get(transport, url)
        transport.close()
    assert type(error) is errors.AmbiguousError, error
    assert "send.php: no complete reply from 127.0.0.1:" in str(error)
    assert "within the 1 s deadline; it may have been sent" in str(error)
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + MARGIN
    assert_clean(error)


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n"],
    ids=["chunked", "to close", "huge Content-Length"],
)  # fmt: skip
def test_an_endless_fast_body_is_refused_at_the_size_cap(head: bytes) -> None:
    chunk = b"8000\r\n" + b"7" * 0x8000 + b"\r\n" if b"chunked" in head else b"7" * 0x8000
    with no_leaked_threads():
        transport = Transport(timeout=TIMEOUT, deadline=5.0)
        with server(endless(head, chunk)) as url:
            elapsed, error = timed_get(transport, url)
        transport.close()
    assert type(error) is errors.AmbiguousError, error
    assert f"over {4 * 1024 * 1024} bytes refused" in str(error)
    assert elapsed < 5.0
    assert_clean(error)


def test_a_body_at_the_cap_is_read() -> None:
    body = b"1" * 4096
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    transport = Transport(timeout=TIMEOUT, max_body=len(body))
    with server(lambda conn, stop: conn.sendall(head + body)) as url:
        assert transport.get(url, {}) == body.decode()
    transport = Transport(timeout=TIMEOUT, max_body=len(body) - 1)
    with server(lambda conn, stop: conn.sendall(head + body)) as url, pytest.raises(errors.AmbiguousError):
        transport.get(url, {})


# A TLS record header announcing a 16 KiB handshake record: the client waits for all of it.
TLS_RECORD = b"\x16\x03\x03\x40\x00"


def test_deadline_during_a_trickled_tls_handshake_is_a_connect_error() -> None:
    # CPython bounds one do_handshake() call by the socket timeout in total, and the connect
    # timeout (which the handshake runs under) is clamped to the deadline; the socket is also armed
    # before the handshake. Either way: a connect error, within the deadline.
    with no_leaked_threads():
        transport = Transport(timeout=TIMEOUT, deadline=DEADLINE)
        with tls_trickler() as port:
            started = time.monotonic()
            with pytest.raises(errors.ConnectError) as caught:
                transport.get(f"https://127.0.0.1:{port}/external/get/send.php", SECRET_QUERY, endpoint="send.php")
            elapsed = time.monotonic() - started
        transport.close()
    assert "no connection to" in str(caught.value) and "1 s deadline; not sent" in str(caught.value)
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + MARGIN
    assert_clean(caught.value)


@contextmanager
def tls_trickler() -> Iterator[int]:
    """Accepts, reads the ClientHello, then trickles a TLS record that never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)  # the ClientHello
            with suppress(OSError):
                trickle(TLS_RECORD + bytes(16384))(conn, stop)

    thread = threading.Thread(target=serve, name="test-tls-trickler", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(GIVE_UP + 2)
        assert not thread.is_alive()
        listener.close()


def test_deadline_during_a_trickled_proxy_tunnel_is_a_connect_error() -> None:
    """An egress proxy (HTTPS_PROXY) that answers CONNECT a byte at a time: no byte of the request
    reached LightSMS. The socket is armed right after the TCP connect to the proxy."""
    established = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: slow\r\n\r\n"
    with no_leaked_threads():
        transport = Transport(timeout=TIMEOUT, deadline=DEADLINE)
        with server(trickle(established)) as proxy_url:
            transport.session.proxies = {"https": proxy_url.split("/external")[0]}
            started = time.monotonic()
            with pytest.raises(errors.ConnectError) as caught:
                transport.get("https://lightsms.invalid/external/get/send.php", SECRET_QUERY, endpoint="send.php")
            elapsed = time.monotonic() - started
            transport.close()
    assert "no connection to lightsms.invalid within the 1 s deadline; not sent" in str(caught.value)
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + MARGIN
    assert_clean(caught.value)


def test_connect_timeout_is_clamped_to_the_deadline() -> None:
    with saturated_listener() as port:
        transport = Transport(timeout=(5.0, 5.0), deadline=0.5)
        started = time.monotonic()
        # whichever comes first of the clamped connect timeout and the deadline: both say "not sent"
        with pytest.raises(errors.ConnectError, match=r"connect timeout|0\.5 s deadline; not sent"):
            transport.get(f"http://127.0.0.1:{port}/external/get/send.php", SECRET_QUERY, endpoint="send.php")
        assert time.monotonic() - started < 0.5 + MARGIN


def test_deadline_is_per_request_on_one_keep_alive_connection() -> None:
    """30 requests of ~25 ms each on one connection: 0.75 s in all, past a 0.4 s deadline."""
    connections: list[int] = []
    body = b'{"money": "1.0", "currency": "EUR"}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def keep_alive(conn: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        while True:
            stop.wait(0.025)  # the server's work: makes the total outlast one deadline
            conn.sendall(reply)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk

    transport = Transport(timeout=TIMEOUT, deadline=0.4)
    with server(keep_alive) as url:
        started = time.monotonic()
        for _ in range(30):
            assert transport.get(url, {}) == body.decode()
        assert time.monotonic() - started > 0.4 * 1.5
        transport.close()  # before the server's exit: its handler returns on EOF
    assert connections == [1]
    assert watchdog.pending == 0  # every ticket disarmed and out of the heap


def test_deadline_on_a_reused_keep_alive_connection() -> None:
    """The socket armed is the one this request uses, also when the pool hands out an old one."""
    connections: list[int] = []

    def answer_then_trickle(conn: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        conn.sendall(REPLY)  # the first request: answered at once, the connection kept alive
        _read_request(conn)
        trickle(REPLY)(conn, stop)

    with no_leaked_threads():
        transport = Transport(timeout=TIMEOUT, deadline=DEADLINE)
        with server(answer_then_trickle) as url:
            assert transport.get(url, {}) == BODY.decode()
            elapsed, error = timed_get(transport, url)
            transport.close()
    assert connections == [1]
    assert type(error) is errors.AmbiguousError and "1 s deadline" in str(error), error
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + MARGIN


def test_a_reply_read_to_the_end_disarms_before_its_connection_is_pooled() -> None:
    """Else a deadline passing between the pool handing the connection to the next request and
    this request's own disarm would shut the connection down under that next request."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n" + BODY
    transport = Transport(timeout=TIMEOUT)
    with server(lambda conn, stop: conn.sendall(reply)) as url:
        with watchdog.guard(5.0) as ticket:
            response = transport.session.get(url, stream=True, timeout=TIMEOUT)
            assert ticket.live and ticket.written and ticket.fd >= 0  # armed while the body is unread
            assert response.content == BODY  # read to the end: the connection goes back to the pool
            assert not ticket.live and ticket.fd == -1 and not ticket.fired
        transport.close()


def test_a_connection_whose_deadline_fired_is_closed_not_pooled() -> None:
    from lightsms.transport import _DeadlineHTTPPool

    a, b = socket.socketpair()
    with a, b:
        pool = _DeadlineHTTPPool("127.0.0.1", 9, maxsize=1)
        conn = pool._get_conn()
        conn.sock = a  # type: ignore[assignment]
        ticket = watchdog.arm(0.0)
        watchdog.attach(ticket, a)
        wait_until(lambda: ticket.fired, timeout=2, message="the watchdog to fire")
        assert b.recv(1) == b""  # shut down: the peer sees EOF
        conn._deadline_ticket = ticket  # type: ignore[attr-defined]
        pool._put_conn(conn)
        assert conn.sock is None  # closed
        assert ticket.fd == -1 and watchdog.disarm(ticket)
        pool.close()


def test_ssl_error_after_the_request_was_written_is_ambiguous() -> None:
    import ssl

    import requests

    error = requests.exceptions.SSLError(ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record"))
    url = "https://www.lightsms.com/external/get/send.php?signature=abc"
    assert type(classify_exception(error, where="send.php", url=url)) is errors.ConnectError
    written = classify_exception(error, where="send.php", url=url, written=True)
    assert type(written) is errors.AmbiguousError
    assert "may have been sent" in str(written)


def test_deadline_defaults_and_validation() -> None:
    assert Transport().deadline == pytest.approx(3.05 + 10.0)  # the same default as LIGHTSMS_REQUEST_DEADLINE
    assert Transport(timeout=(1.0, 3.0)).deadline == 4.0
    assert Transport(timeout=(1.0, 3.0), deadline=0.5).deadline == 0.5
    client = LightSmsClient("demo", "key", timeout=(1.0, 2.0), deadline=7.5)
    assert client.transport.deadline == 7.5
    assert LightSmsClient("demo", "key", timeout=(1.0, 2.0)).transport.deadline == 3.0
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="deadline"):
            Transport(deadline=bad)


def test_arming_is_cheap() -> None:
    """No thread per request: 2000 arm/attach/disarm cycles on a real socket, well under a second."""
    a, b = socket.socketpair()
    with a, b, no_leaked_threads():
        started = time.monotonic()
        for _ in range(2000):
            with watchdog.guard(5.0) as ticket:
                watchdog.attach(ticket, a)
                assert watchdog.begin_write(ticket)
        assert time.monotonic() - started < 1.0
        assert watchdog.pending == 0


# --- against the simulator process ------------------------------------------------------------------


def test_trickled_send_is_ambiguous_within_the_deadline_and_was_accepted(
    sim_process: SimProcess, sim_admin: SimAdmin
) -> None:
    with no_leaked_threads():
        client = LightSmsClient("demo", "demo-key", base_url=sim_process.base_url, timeout=TIMEOUT, deadline=DEADLINE)
        client.balance()  # the clock is synced: the fault hits send.php itself
        sim_admin.faults(trickle_rate=1.0, trickle_interval=0.3, count=1)
        started = time.monotonic()
        with pytest.raises(errors.AmbiguousError, match="within the 1 s deadline") as caught:
            client.send(["37061234567"], "Trickled", sender="LightSMS")
        elapsed = time.monotonic() - started
        (result,) = client.send(["37061234567"], "Next", sender="LightSMS")  # count spent: a normal reply
        client.close()
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + MARGIN
    assert_clean(caught.value)
    assert result.accepted
    assert [m["text"] for m in sim_admin.messages()] == ["Trickled", "Next"]
    assert [r["outcome"] for r in sim_admin.requests("send")] == ["trickle", "accepted"]


def test_a_request_past_its_deadline_is_not_written_even_before_the_watchdog_fires():
    late = Ticket(time.monotonic() - 0.001)  # never armed: no watchdog will fire it
    assert not watchdog.begin_write(late) and not late.written
    assert late.fired  # so the transport reports it as never written (ConnectError), not as cut short
    too_late_to_write = Ticket(time.monotonic() + 5, write_by=time.monotonic() - 0.001)
    assert not watchdog.begin_write(too_late_to_write) and too_late_to_write.fired
    due = Ticket(time.monotonic() + 5, write_by=time.monotonic() + 5)
    assert watchdog.begin_write(due) and due.written and not due.fired
