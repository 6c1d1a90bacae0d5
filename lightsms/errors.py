"""The exception tree of the LightSMS client. Every error it raises is a LightSmsError.

    LightSmsError
    ├── NotSentError            provably never reached LightSMS: safe to retry
    │   ├── ConnectError          DNS failure, connection refused, connect timeout
    │   ├── ThrottledError        HTTP 429, or 503
    │   └── ClockRejectedError    signature or timestamp refused (6, 24): resync and re-sign
    ├── PermanentError          refused for good (3/4/5, 8-11, 14, 16, 31 ...): never retry
    │   └── InvalidInput          bad input, refused before any HTTP request (also a ValueError)
    ├── SuppressionError        the number is on a stop list (13, 34)
    ├── AccountError            the account cannot send: pause all sending
    │   ├── InvalidLoginError     7, or 6 that persists after a clock resync
    │   ├── InsufficientFundsError  32, 35
    │   └── ProviderUnavailableError  not LightSMS's API answering (HTTP 404, a redirect, a page
    │                             instead of a timestamp): a wrong base URL or an outage; nothing
    │                             was processed
    └── AmbiguousError          may have been sent: read timeout, reset after the request was
        │                       written, other 5xx, an unparseable send.php body, error 12
        └── MalformedResponseError  a lookup's reply (status, balance ...) could not be read

Retry filters read the class, never the message. Each carries the LightSMS code (None for
transport failures) and never the API key or the request's signature.
"""

from __future__ import annotations

from .codes import CLOCK_CODES, FUNDS_CODES, LOGIN_CODES, Outcome, lookup


class LightSmsError(Exception):
    outcome: Outcome = Outcome.AMBIGUOUS
    http_status: int | None = None  # the HTTP status of the reply it was read from, when one came

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message if self.code is None else f"[{self.code}] {self.message}"


class NotSentError(LightSmsError):
    outcome = Outcome.NOT_SENT


class ConnectError(NotSentError):
    pass


class ThrottledError(NotSentError):
    def __init__(self, message: str, *, code: int | None = None, retry_after: float | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ClockRejectedError(NotSentError):
    pass


class PermanentError(LightSmsError):
    outcome = Outcome.PERMANENT


class InvalidInput(PermanentError, ValueError):
    """Refused before any request: names the offending field."""

    outcome = Outcome.PERMANENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class SuppressionError(LightSmsError):
    outcome = Outcome.SUPPRESSION


class AccountError(LightSmsError):
    outcome = Outcome.ACCOUNT


class InvalidLoginError(AccountError):
    pass


class InsufficientFundsError(AccountError):
    pass


class ProviderUnavailableError(AccountError):
    """Whatever answered is not LightSMS's API: no request was processed, and none will be until
    the base URL is fixed or the outage ends."""


class AmbiguousError(LightSmsError):
    outcome = Outcome.AMBIGUOUS


class MalformedResponseError(AmbiguousError):
    """A lookup's reply could not be read. (An unreadable send.php reply is an AmbiguousError.)"""


def error_for_code(code: int, *, context: str = "") -> LightSmsError:
    """The exception for a LightSMS error code, by its class in the code table."""
    entry = lookup(code)
    message = entry.meaning if not context else f"{context}: {entry.meaning}"
    if code in CLOCK_CODES:
        return ClockRejectedError(message, code=code)
    if code in LOGIN_CODES:
        return InvalidLoginError(message, code=code)
    if code in FUNDS_CODES:
        return InsufficientFundsError(message, code=code)
    by_outcome: dict[Outcome, type[LightSmsError]] = {
        Outcome.NOT_SENT: NotSentError,
        Outcome.PERMANENT: PermanentError,
        Outcome.SUPPRESSION: SuppressionError,
        Outcome.ACCOUNT: AccountError,
        Outcome.NO_DATA: PermanentError,
        Outcome.OK: AmbiguousError,  # a bare top-level 0 ("service disabled") proves nothing
    }
    return by_outcome.get(entry.outcome, AmbiguousError)(message, code=code)
