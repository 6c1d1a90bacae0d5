"""Transport: failure classification on real loopback sockets, and on the wrapped exceptions
requests/urllib3 raise (built by hand where a real one would need DNS)."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from lightsms import errors
from lightsms.transport import NO_RETRIES, Transport, classify_exception, parse_retry_after

URL = "http://127.0.0.1:9/external/get/send.php"
SECRET_QUERY = {"signature": "0123456789abcdef0123456789abcdef", "text": "private text", "phone": "37061234567"}


def test_urllib3_retries_are_off() -> None:
    transport = Transport()
    retries = transport.adapter.max_retries
    assert retries is NO_RETRIES
    assert (retries.total, retries.connect, retries.read, retries.redirect, retries.status, retries.other) == (
        0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    assert transport.adapter._pool_maxsize == 16  # type: ignore[attr-defined]
    assert transport.session.get_adapter("https://www.lightsms.com/") is transport.adapter


def _wrapped(reason: Exception, outer: type[requests.RequestException] = requests.ConnectionError) -> Exception:
    """What requests raises with Retry(total=0): outer(MaxRetryError(reason))."""
    return outer(MaxRetryError(None, "/external/get/send.php?signature=abc", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "cls", "words"),
    [
        (_wrapped(NameResolutionError("www.lightsms.com", None, socket.gaierror(-2, "Name unknown"))),  # type: ignore[arg-type]
         errors.ConnectError, "cannot resolve"),
        (_wrapped(NewConnectionError(None, "refused")), errors.ConnectError, "cannot connect"),  # type: ignore[arg-type]
        (_wrapped(ConnectTimeoutError(None, "timed out"), requests.ConnectTimeout), errors.ConnectError,
         "connect timeout"),
        (_wrapped(ReadTimeoutError(None, "/x", "read timed out")), errors.AmbiguousError, "read timeout"),  # type: ignore[arg-type]
        (requests.ReadTimeout("read timed out"), errors.AmbiguousError, "read timeout"),
        (_wrapped(ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))),
         errors.AmbiguousError, "RemoteDisconnected"),
        (requests.ConnectionError(ProtocolError("aborted", ConnectionResetError(104, "reset"))),
         errors.AmbiguousError, "ConnectionResetError"),
        (requests.exceptions.ChunkedEncodingError("broken"), errors.AmbiguousError, "may have been sent"),
    ],
)  # fmt: skip
def test_classification_of_wrapped_exceptions(error: Exception, cls: type[errors.LightSmsError], words: str) -> None:
    classified = classify_exception(error, where="send.php", url=URL + "?signature=abc")
    assert type(classified) is cls
    assert words in str(classified)
    assert "signature" not in str(classified)


@pytest.mark.parametrize(
    ("header", "expected"), [(None, None), ("", None), ("7", 7.0), ("soon", None),
                          (formatdate(1_000_030.0, usegmt=True), 30.0), (formatdate(1_000_030.0), 30.0),
                          (formatdate(999_000.0, usegmt=True), 0.0),
                          # hostile headers: never an exception, never infinity
                          ("\u00b2", None), ("\u0661\u0662", None), ("9" * 5000, None), ("1e400", None),
                          ("-5", None), ("Mon, 99 Foo 99999999 99:99:99 GMT", None), ("x" * 10_000, None)]
)
def test_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_000_000.0) == expected


# --- real sockets ---------------------------------------------------------------------------------


@contextmanager
def one_shot_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that reads one request per connection and lets `handle` answer it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    stopping = threading.Event()
    address = listener.getsockname()

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                if stopping.is_set():
                    return
                conn.recv(65536)
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{address[1]}/external/get/send.php"
    finally:
        stopping.set()
        socket.create_connection(address, timeout=2).close()  # wakes accept(); close() alone does not
        thread.join(5)
        assert not thread.is_alive()
        listener.close()


def _rst(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _reply(raw: bytes) -> Callable[[socket.socket], None]:
    return lambda conn: conn.sendall(raw)


@pytest.mark.parametrize(
    ("handle", "cls", "words"),
    [
        (_rst, errors.AmbiguousError, "ConnectionResetError"),
        (lambda conn: None, errors.AmbiguousError, "RemoteDisconnected"),
        (_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"3706"), errors.AmbiguousError, "IncompleteRead"),
        (_reply(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"), errors.ThrottledError,
         "HTTP 503"),
        (_reply(b"HTTP/1.1 429 Slow\r\nContent-Length: 0\r\n\r\n"), errors.ThrottledError, "HTTP 429"),
        (_reply(b"HTTP/1.1 502 Bad\r\nContent-Length: 0\r\n\r\n"), errors.AmbiguousError, "HTTP 502"),
        (_reply(b"HTTP/1.1 504 Late\r\nContent-Length: 0\r\n\r\n"), errors.AmbiguousError, "HTTP 504"),
        (_reply(b"HTTP/1.1 302 Moved\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n"),
         errors.ProviderUnavailableError, "HTTP 302: not LightSMS's API"),
        (_reply(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<h1>?</h1"),
         errors.ProviderUnavailableError, "HTTP 404: not LightSMS's API"),
        (_reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), errors.ProviderUnavailableError,
         "LIGHTSMS_BASE_URL"),
    ],
)  # fmt: skip
def test_failures_on_real_sockets(
    handle: Callable[[socket.socket], None], cls: type[errors.LightSmsError], words: str
) -> None:
    transport = Transport(timeout=(1.0, 2.0))
    with one_shot_server(handle) as url, pytest.raises(cls) as caught:
        transport.get(url, SECRET_QUERY, endpoint="send.php")
    assert words in str(caught.value)
    assert str(caught.value).startswith("send.php: ")
    for secret in SECRET_QUERY.values():
        assert secret not in str(caught.value)
    # nothing rides along: the original error's message holds the signed URL
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    transport.close()


def test_a_failed_tls_handshake_sent_nothing() -> None:
    transport = Transport(timeout=(1.0, 2.0))
    plain_http = _reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    with one_shot_server(plain_http) as url, pytest.raises(errors.ConnectError, match="TLS handshake"):
        transport.get(url.replace("http://", "https://"), SECRET_QUERY, endpoint="send.php")
    transport.close()


def test_retry_after_header_is_kept() -> None:
    transport = Transport(timeout=(1.0, 2.0))
    busy = _reply(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")
    with one_shot_server(busy) as url, pytest.raises(errors.ThrottledError) as caught:
        transport.get(url, {}, endpoint="send.php")
    assert caught.value.retry_after == 7.0


def test_body_without_charset_is_utf8() -> None:
    body = '{"text": "ačiū 😀"}'.encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with one_shot_server(_reply(head + body)) as url:
        assert Transport().get(url, {}) == '{"text": "ačiū 😀"}'


@contextmanager
def saturated_listener() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so connect() times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(64):  # fill the queue until a connect no longer completes
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                filler.close()
                break
            fillers.append(filler)
        else:
            pytest.skip("the kernel never refused a connection to a full accept queue")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout_is_connect_error() -> None:
    with saturated_listener() as port:
        transport = Transport(timeout=(0.3, 2.0))
        with pytest.raises(errors.ConnectError, match="connect timeout"):
            transport.get(f"http://127.0.0.1:{port}/external/get/send.php", SECRET_QUERY, endpoint="send.php")


def test_connection_refused_is_connect_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(errors.ConnectError, match="connection refused"):
        Transport().get(f"http://127.0.0.1:{port}/external/get/send.php", SECRET_QUERY, endpoint="send.php")


def test_an_egress_proxy_and_no_proxy_from_the_environment_are_honoured(monkeypatch) -> None:
    """Read once per origin, not by requests on every call, but read: HTTP_PROXY carries the request
    (the proxy gets the absolute URL), and NO_PROXY takes a host out of it."""
    seen: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        seen.append(b"")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with one_shot_server(proxy) as url:
        proxy_origin = url.split("/external")[0]
        monkeypatch.setenv("HTTP_PROXY", proxy_origin)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        transport = Transport(timeout=(2, 2))
        try:
            assert transport.get("http://lightsms.invalid/external/get/send.php", {"a": "1"}) == "ok"
            assert len(seen) == 1  # through the proxy: lightsms.invalid itself does not resolve
            with pytest.raises(errors.LightSmsError):
                transport.get("http://direct.invalid/external/get/send.php", {"a": "1"})  # straight: no such host
            assert len(seen) == 1
        finally:
            transport.close()
