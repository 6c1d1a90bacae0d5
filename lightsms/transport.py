"""HTTP for the LightSMS client: pooled keep-alive GETs, and failures sorted by "could it have been sent?".

urllib3's own retries are off (tenacity in the worker is the only retry layer). With
Retry(total=0) every low-level failure arrives wrapped: requests raises ConnectionError or
ConnectTimeout around urllib3's MaxRetryError, whose `reason` is the real cause
(NewConnectionError / NameResolutionError / ConnectTimeoutError before anything was sent;
ReadTimeoutError or ProtocolError(RemoteDisconnected / ConnectionResetError) after the request was
written). So the cause chain is walked instead of trusting requests' outer class: with retries on,
a read timeout even comes out as requests' ConnectionError (psf/requests#5517).

Messages are built here and the cause is dropped (`from None`): requests puts the full URL, query
string and signature included, into its own messages.

A read timeout bounds one socket read, not the reply, so every request also runs under a total
deadline (lightsms.deadline): the connection classes below attach the socket each request uses to
its ticket, new connections right after the TCP connect (so a TLS handshake is covered) and reused
keep-alive ones before the request is written; the watchdog shuts that socket down when the
deadline passes. A request whose deadline fired is a ConnectError when nothing had been written
yet, else an AmbiguousError, whatever the shut-down socket made requests raise (or not raise: a
reply cut short can look complete). The body is streamed in chunks and refused beyond `max_body`.
Not covered: name resolution (getaddrinfo cannot be interrupted) and the TCP connect itself, which
the connect timeout bounds (clamped to the deadline).
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from .deadline import Ticket, current_ticket, watchdog
from .errors import (
    AmbiguousError,
    ConnectError,
    LightSmsError,
    PermanentError,
    ProviderUnavailableError,
    ThrottledError,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "NO_RETRIES",
    "DeadlineAdapter",
    "RedactSignedQueries",
    "Transport",
    "classify_exception",
    "parse_retry_after",
]

NO_RETRIES = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False)

_THROTTLED = frozenset({429, 503})
# Answered by a web server in front of the API scripts, never by them: not found, method not
# allowed, gone, and the authentication a proxy or firewall asks for.
_NOT_THE_API = frozenset({401, 403, 404, 405, 407, 410})
# A Retry-After in seconds: ASCII digits, and a sane number of them.
_RETRY_SECONDS = re.compile(r"[0-9]{1,9}")
_MAX_CHAIN = 12
# urllib3 logs request URLs at DEBUG (and on retries): ours carry the signature, phones and text.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")
_SIGNED_QUERY = re.compile(r"\?[^\s'\"]*signature=[^\s'\"]*")
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # LightSMS replies are a few KiB; a bigger one is refused, unread
_CHUNK = 64 * 1024


class RedactSignedQueries(logging.Filter):
    """Replaces a signed query string in a log record by "?<redacted>" (phones and text are PII)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "signature=" in record.msg:
            record.msg = _SIGNED_QUERY.sub("?<redacted>", record.msg)
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "signature=" in a for a in record.args):
            record.args = tuple(_SIGNED_QUERY.sub("?<redacted>", a) if isinstance(a, str) else a for a in record.args)
        return True


_REDACTOR = RedactSignedQueries()


def _install_redactor() -> None:
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


class DeadlineExceeded(OSError):
    """Raised instead of writing a request whose deadline passed before a byte was written."""


class _DeadlineConnection(HTTPConnection):
    """Attaches the socket in use to the current request's deadline ticket (lightsms.deadline).

    `_new_conn` covers a new connection right after the TCP connect, before any TLS handshake or
    proxy tunnel; `request` covers a reused keep-alive connection (and connects a new plain-HTTP
    one first, which http.client would otherwise do lazily inside the first write), then marks the
    request as written unless the deadline has already fired. The pool disarms the ticket when the
    connection comes back to it (`_released`), and Transport.get in any case when it is done.
    """

    _deadline_ticket: Ticket | None = None  # the ticket this connection's socket is attached to

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        ticket = current_ticket()
        if ticket is not None:
            try:
                watchdog.attach(ticket, sock)
            except OSError:
                sock.close()
                raise
            self._deadline_ticket = ticket
        return sock

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        ticket = current_ticket()
        if ticket is not None:
            if self.sock is None:
                self.connect()
            self._attach(ticket)
            if not watchdog.begin_write(ticket):
                raise DeadlineExceeded("deadline passed before the request was written")
        super().request(method, url, body=body, headers=headers, **options)

    def getresponse(self) -> Any:  # type: ignore[override]
        ticket = current_ticket()
        if ticket is not None:
            self._attach(ticket)
        return super().getresponse()

    def _attach(self, ticket: Ticket) -> None:
        if self._deadline_ticket is not ticket and self.sock is not None:
            watchdog.attach(ticket, self.sock)
            self._deadline_ticket = ticket


class _DeadlineHTTPSConnection(_DeadlineConnection, HTTPSConnection):
    pass


def _released(conn: Any) -> None:
    """A connection goes back to the pool once its reply has been read to the end: disarm its
    request's deadline first, so that a deadline passing in the instant before the request's own
    disarm cannot shut down the connection under the next request to check it out. If it fired,
    the connection is shut down: close it rather than pool it."""
    ticket = getattr(conn, "_deadline_ticket", None)
    if ticket is not None:
        conn._deadline_ticket = None
        if watchdog.disarm(ticket):
            conn.close()


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection

    def _put_conn(self, conn: Any) -> None:
        _released(conn)
        super()._put_conn(conn)


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _released(conn)
        super()._put_conn(conn)


_POOL_CLASSES = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """HTTPAdapter whose pools (direct, and through an HTTP(S) proxy) use the connection classes
    that attach each request's socket to its deadline ticket."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS brings its own connection classes
            manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager


class _BodyTooLarge(Exception):
    pass


class Transport:
    """Pooled GETs with a total deadline per request.

    `timeout` is (connect, read) in seconds, as requests takes it; `deadline` bounds the whole
    request, connect to last body byte (default: connect + read timeout); `max_body` caps a reply's
    (decoded) body in bytes.
    """

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        deadline: float | None = None,
        pool_size: int = 16,
        user_agent: str = "lightsms-queue",
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        connect, read = timeout
        self.timeout = (float(connect), float(read))
        self.deadline = float(deadline) if deadline is not None else self.timeout[0] + self.timeout[1]
        if not 0 < self.deadline < math.inf:
            raise ValueError("deadline must be a positive number of seconds")
        if max_body <= 0:
            raise ValueError("max_body must be positive")
        self.max_body = int(max_body)
        # A connect timeout past the deadline could never be reached; the TCP connect happens before
        # a socket can be attached to the deadline, so it is bounded by this instead.
        self._request_timeout = (min(self.timeout[0], self.deadline), self.timeout[1])
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # An egress proxy (HTTPS_PROXY, NO_PROXY) or a CA bundle from the environment must work; they are
        # read once per origin (_environment) rather than by requests on every call, where reading
        # them cost a worker a twentieth of its CPU per message.
        self.session.trust_env = False
        self._environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.adapter = DeadlineAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=NO_RETRIES)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        _install_redactor()

    def get(
        self, url: str, params: Mapping[str, str], *, endpoint: str = "", write_by: float | None = None
    ) -> str:
        """The body of a 200 reply; any other outcome raises a classified LightSmsError. `write_by`:
        the moment (time.monotonic) after which the request must not be written at all (a rate
        limit's place covers it only that long); past it, not sent (ConnectError)."""
        where = endpoint or _path_of(url)
        if write_by is not None and time.monotonic() >= write_by:
            raise ConnectError(f"{where}: not written: too late for its place in the rate limit; not sent")
        with watchdog.guard(self.deadline, write_by=math.inf if write_by is None else write_by) as ticket:
            _, body, failure = self._exchange(url, params, where, ticket)
        # guard() has disarmed the ticket: `fired` is final. A shut-down socket may have made
        # requests raise anything, or nothing (a reply cut short can look complete).
        if ticket.fired:
            failure = self._deadline_error(where, url, written=ticket.written)
        if failure is not None:
            # Raised outside any except block: the original error's message holds the signed URL,
            # and it must not ride along as __context__.
            raise failure
        return body

    def _exchange(
        self, url: str, params: Mapping[str, str], where: str, ticket: Ticket
    ) -> tuple[int, str, LightSmsError | None]:
        failure: LightSmsError | None = None
        try:
            response = self.session.get(
                url, params=dict(params), timeout=self._request_timeout, allow_redirects=False, stream=True,
                **self._environment(url),
            )  # fmt: skip
        except (requests.RequestException, HTTPError, OSError) as error:
            # urllib3's own HTTPError can escape requests' wrapping on some paths.
            failure = classify_exception(error, where=where, url=url, written=ticket.written)
        if failure is not None:
            return 0, "", failure
        with response:  # closes the connection unless the whole body was read
            try:
                content = self._read_body(response)
            except _BodyTooLarge:
                failure = AmbiguousError(
                    f"{where}: reply from {_host_of(url)} over {self.max_body} bytes refused; it may have been sent"
                )
            except (requests.RequestException, HTTPError, OSError) as error:
                failure = classify_exception(error, where=where, url=url, written=True)
            if failure is not None:
                return response.status_code, "", failure
            if response.status_code != 200:
                return response.status_code, "", classify_status(response, where=where)
            return response.status_code, _body_text(response, content), None

    def _environment(self, url: str) -> dict[str, Any]:
        """The proxies, CA bundle and client certificate the environment gives `url`'s origin, as
        requests would read them with trust_env (netrc aside: LightSMS signs its requests)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._environments:
            with requests.Session() as reader:  # trust_env on: requests' own reading of the environment
                merged = dict(reader.merge_environment_settings(url, {}, None, None, None))
            merged.pop("stream", None)
            self._environments[origin] = merged
        return self._environments[origin]

    def _read_body(self, response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.max_body:
                raise _BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _deadline_error(self, where: str, url: str, *, written: bool) -> LightSmsError:
        target = _host_of(url)
        if not written:
            return ConnectError(f"{where}: no connection to {target} within the {self.deadline:g} s deadline; not sent")
        return AmbiguousError(
            f"{where}: no complete reply from {target} within the {self.deadline:g} s deadline; it may have been sent"
        )

    def close(self) -> None:
        self.session.close()


def classify_status(response: requests.Response, *, where: str) -> LightSmsError:
    error = _classify_status(response, where=where)
    error.http_status = response.status_code
    return error


def _classify_status(response: requests.Response, *, where: str) -> LightSmsError:
    status = response.status_code
    if status in _THROTTLED:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        hint = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return ThrottledError(f"{where}: HTTP {status} (throttled, not processed{hint})", retry_after=retry_after)
    if 300 <= status < 400 or status in _NOT_THE_API:
        # A redirect (never followed), or a status no API script answers with: whatever answered is
        # not LightSMS's API, so nothing was processed. A wrong base URL or an outage: every
        # request would meet the same, so sending pauses rather than failing message by message.
        return ProviderUnavailableError(f"{where}: HTTP {status}: not LightSMS's API; check LIGHTSMS_BASE_URL")
    return AmbiguousError(f"{where}: HTTP {status}; the request may have been processed")


def classify_exception(error: BaseException, *, where: str, url: str, written: bool = False) -> LightSmsError:
    """Failures before the request was written -> ConnectError; after -> AmbiguousError.

    `written`: the request is known to have been (partly) written, so a TLS error is not a failed
    handshake but a broken reply (urllib3 raises SSLError for both)."""
    target = _host_of(url)
    chain = list(_causes(error))
    if any(isinstance(e, ReadTimeoutError | requests.ReadTimeout) for e in chain):
        return AmbiguousError(f"{where}: no reply from {target} within the read timeout; it may have been sent")
    if any(isinstance(e, NameResolutionError) for e in chain):
        return ConnectError(f"{where}: cannot resolve {target}")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectError(f"{where}: connection refused by {target}")
    # NewConnectionError subclasses ConnectTimeoutError: both happen before a byte was sent.
    if any(isinstance(e, NewConnectionError) for e in chain):
        return ConnectError(f"{where}: cannot connect to {target} ({_root_name(chain)})")
    if any(isinstance(e, ConnectTimeoutError | requests.ConnectTimeout) for e in chain):
        return ConnectError(f"{where}: connect timeout to {target}")
    if not written and any(isinstance(e, requests.exceptions.SSLError | ssl.SSLError) for e in chain):
        # The TLS handshake comes before the request: a certificate or protocol failure sent nothing.
        return ConnectError(f"{where}: TLS handshake with {target} failed ({_root_name(chain)})")
    if any(isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema) for e in chain):
        return PermanentError(f"{where}: invalid base URL")
    if any(isinstance(e, ProtocolError | ConnectionError | ssl.SSLError) for e in chain):
        return AmbiguousError(
            f"{where}: connection to {target} lost after the request was written ({_root_name(chain)}); "
            "it may have been sent"
        )
    return AmbiguousError(f"{where}: request to {target} failed ({_root_name(chain)}); it may have been sent")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if _RETRY_SECONDS.fullmatch(value):
        return float(value)
    if len(value) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The exception, its args that are exceptions (requests wraps MaxRetryError there), `reason`,
    and __cause__/__context__, breadth first."""
    seen: set[int] = set()
    queue: list[BaseException] = [error]
    while queue and len(seen) < _MAX_CHAIN:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked: list[object] = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        queue.extend(e for e in linked if isinstance(e, BaseException))


def _root_name(chain: list[BaseException]) -> str:
    """The name of the innermost cause that is not a requests/urllib3 wrapper (no message: it may
    hold the URL)."""
    own = [e for e in chain if not type(e).__module__.startswith(("requests", "urllib3"))]
    picked = own[-1] if own else (chain[-1] if chain else None)
    return type(picked).__name__ if picked is not None else "unknown error"


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "the server"


def _path_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1] or "request"


def _body_text(response: requests.Response, content: bytes) -> str:
    # Without a declared charset requests guesses (slowly, and often wrongly for short bodies);
    # LightSMS speaks UTF-8.
    declared = "charset=" in response.headers.get("Content-Type", "").lower()
    encoding = response.encoding if declared and response.encoding else "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")
