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
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from datetime import UTC
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from .errors import AmbiguousError, ConnectError, LightSmsError, PermanentError, ThrottledError

__all__ = ["NO_RETRIES", "RedactSignedQueries", "Transport", "classify_exception", "parse_retry_after"]

NO_RETRIES = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False)

_THROTTLED = frozenset({429, 503})
_MAX_CHAIN = 12
# urllib3 logs request URLs at DEBUG (and on retries): ours carry the signature, phones and text.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")
_SIGNED_QUERY = re.compile(r"\?[^\s'\"]*signature=[^\s'\"]*")


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


class Transport:
    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        pool_size: int = 16,
        user_agent: str = "lightsms-queue",
    ) -> None:
        connect, read = timeout
        self.timeout = (float(connect), float(read))
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # trust_env stays on: an egress proxy (HTTPS_PROXY) or a CA bundle from the environment must work.
        self.adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=NO_RETRIES)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        _install_redactor()

    def get(self, url: str, params: Mapping[str, str], *, endpoint: str = "") -> tuple[int, str]:
        """(status, body) of a 200 reply; any other outcome raises a classified LightSmsError."""
        where = endpoint or _path_of(url)
        failure: LightSmsError | None = None
        try:
            response = self.session.get(url, params=dict(params), timeout=self.timeout, allow_redirects=False)
        except (requests.RequestException, HTTPError, OSError) as error:
            # urllib3's own HTTPError can escape requests' wrapping on some paths.
            failure = classify_exception(error, where=where, url=url)
        if failure is not None:
            # Raised outside the except block: the original error's message holds the signed URL,
            # and it must not ride along as __context__.
            raise failure
        with response:
            if response.status_code == 200:
                return response.status_code, _body_text(response)
            raise classify_status(response, where=where) from None

    def close(self) -> None:
        self.session.close()


def classify_status(response: requests.Response, *, where: str) -> LightSmsError:
    status = response.status_code
    if status in _THROTTLED:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        hint = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return ThrottledError(f"{where}: HTTP {status} (throttled, not processed{hint})", retry_after=retry_after)
    if 300 <= status < 400:
        # A redirect is not followed: the API itself never processed the request. Retrying cannot
        # help, the base URL is wrong.
        return PermanentError(f"{where}: HTTP {status} redirect; check the base URL")
    return AmbiguousError(f"{where}: HTTP {status}; the request may have been processed")


def classify_exception(error: BaseException, *, where: str, url: str) -> LightSmsError:
    """Failures before the request was written -> ConnectError; after -> AmbiguousError."""
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
    if any(isinstance(e, requests.exceptions.SSLError | ssl.SSLError) for e in chain):
        # The TLS handshake comes before the request: a certificate or protocol failure sent nothing.
        return ConnectError(f"{where}: TLS handshake with {target} failed ({_root_name(chain)})")
    if any(isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema) for e in chain):
        return PermanentError(f"{where}: invalid base URL")
    if any(isinstance(e, ProtocolError | ConnectionError) for e in chain):
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
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
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


def _body_text(response: requests.Response) -> str:
    # Without a declared charset requests guesses (slowly, and often wrongly for short bodies);
    # LightSMS speaks UTF-8.
    declared = "charset=" in response.headers.get("Content-Type", "").lower()
    encoding = response.encoding if declared and response.encoding else "utf-8"
    try:
        return response.content.decode(encoding, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")
