"""LightSmsClient: validated, signed GETs to the LightSMS API, with typed results and errors.

Every signed call carries login, timestamp (server time via ServerClock), return=json|xml and the
signature over all of them. The client never retries on its own except once, right away, when
LightSMS refuses the signature or timestamp (6/24): nothing was sent, so the clock is resynced and
the request re-signed. Everything else is left to the caller's retry policy, read from the
exception class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import date, datetime
from types import TracebackType
from typing import TypeVar

from .clock import ServerClock
from .errors import (
    AmbiguousError,
    ClockRejectedError,
    InvalidInput,
    InvalidLoginError,
    LightSmsError,
    MalformedResponseError,
    NotSentError,
    ProviderUnavailableError,
)
from .models import Balance, BlacklistEntry, DeliveryStatus, IncomingSms, PhoneResult
from .parsing import (
    parse_balance,
    parse_blacklist_add,
    parse_blacklist_find,
    parse_incoming,
    parse_send,
    parse_senders,
    parse_status,
    parse_timestamp,
)
from .phones import normalize_phone
from .signing import sign
from .transport import Transport
from .validation import (
    format_incoming_window,
    validate_phones,
    validate_sender,
    validate_sending_time,
    validate_sms_ids,
    validate_text,
)

__all__ = ["DEFAULT_BASE_URL", "LightSmsClient"]

DEFAULT_BASE_URL = "https://www.lightsms.com/external/get/"
_FORMATS = ("json", "xml")
T = TypeVar("T")


class _Secret:
    """Holds the API key so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("the API key is not picklable")


# Ids per status.php call. LightSMS documents no maximum; 100 is what its hlr.php takes, a size its
# servers are known to answer, and keeps a reply small. The one place this fact lives.
STATUS_IDS_PER_CALL = 100


class LightSmsClient:
    def __init__(
        self,
        login: str,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = (3.05, 10.0),
        deadline: float | None = None,
        response_format: str = "json",
        default_region: str | None = None,
        batch_limit: int = 50,
        max_parts: int = 10,
        clock_refresh_interval: float = 600.0,
        pool_size: int = 16,
        admission: Callable[[str], AbstractContextManager[float | None]] | None = None,
    ) -> None:
        if not login or not isinstance(login, str):
            raise InvalidInput("login", "a LightSMS login is required")
        if not api_key or not isinstance(api_key, str):
            raise InvalidInput("api_key", "a LightSMS API key is required")
        if response_format not in _FORMATS:
            raise InvalidInput("response_format", f"expected one of {', '.join(_FORMATS)}")
        if default_region is not None:
            normalize_phone("+37061234567", default_region=default_region)  # refuses unknown regions
        self.login = login
        self._api_key = _Secret(api_key)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.response_format = response_format
        self.default_region = default_region
        self.batch_limit = batch_limit
        self.max_parts = max_parts
        # deadline: seconds for a whole request, connect to last byte (default: connect + read timeout).
        self.transport = Transport(timeout=timeout, deadline=deadline, pool_size=pool_size)
        self.clock = ServerClock(self.server_time, refresh_interval=clock_refresh_interval)
        # Entered around every signed request, the ones LightSMS counts (timestamp.php is not signed);
        # it may refuse one by raising NotSentError, and gives the moment (time.monotonic) after which
        # the request must not be written, or None. core/arrival_window.py holds the rate limit with it.
        self._admission = admission or (lambda _endpoint: contextlib.nullcontext())

    def __repr__(self) -> str:
        return (
            f"LightSmsClient(login={self.login!r}, api_key='***', base_url={self.base_url!r}, "
            f"response_format={self.response_format!r})"
        )

    # --- sending ----------------------------------------------------------------------------

    def ready(self) -> None:
        """Read LightSMS's clock now if it is due (timestamp.php), before a caller takes its slot of a
        rate limit: else a process's first request, and one every refresh interval, would ask for it
        after its slot, and every thread of the process would wait on the clock meanwhile, then
        send in a bunch. A failure is left for the request itself to meet and report."""
        with contextlib.suppress(LightSmsError):
            self.clock.stamp()

    def send(
        self,
        phones: Iterable[str] | str,
        text: str,
        *,
        sender: str,
        sending_time: datetime | str | None = None,
        phones_checked: bool = False,
    ) -> list[PhoneResult]:
        """One send.php call; a PhoneResult per phone in input order (each phone independent).

        Raises InvalidInput before any HTTP request for bad input, and the class of the code for a
        whole-request error (top-level, under "", or the same request code under every phone),
        unless a phone beside it was accepted (an id_sms): then each phone has its own result.
        `phones_checked`: the caller vouches that each phone is already as normalize_phone returns it
        (phonenumbers is not run again; the count and repeats still are).
        """
        normalized = validate_phones(
            phones, batch_limit=self.batch_limit, default_region=self.default_region, checked=phones_checked
        )
        validate_text(text, max_parts=self.max_parts)
        validate_sender(sender)
        when = validate_sending_time(sending_time)
        params = {"phone": ",".join(normalized), "text": text, "sender": sender}
        if when is not None:
            params["sendingTime"] = when
        return self._signed("send", params, lambda body: self._parse_send(body, normalized))

    def _parse_send(self, body: str, phones: list[str]) -> list[PhoneResult]:
        """parse_send; a reply with nothing in it that reads as LightSMS's (an outage page, a proxy's
        error) also makes the next request ask timestamp.php first, which shows whether the API
        answers at all (ProviderUnavailableError when it does not)."""
        try:
            results = parse_send(body, self.response_format, phones)
        except AmbiguousError:
            self.clock.expire()
            raise
        if not any(r.code is not None for r in results):
            self.clock.expire()
        return results

    # --- lookups: code 19 ("empty response") is an empty result, not an error -------------------

    def status(self, ids: Iterable[str] | str) -> dict[str, DeliveryStatus]:
        """One status.php call: {id_sms: DeliveryStatus} for the ids LightSMS knows (the others are
        absent). Ask at most STATUS_IDS_PER_CALL ids at once."""
        wanted = validate_sms_ids(ids)
        return self._signed(
            "status", {"state": ",".join(wanted)}, lambda body: parse_status(body, self.response_format, wanted)
        )

    def balance(self) -> Balance:
        return self._signed("balance", {}, lambda body: parse_balance(body, self.response_format))

    def senders(self) -> dict[str, str]:
        return self._signed("senders", {}, lambda body: parse_senders(body, self.response_format))

    def incoming(
        self,
        *,
        date: date | str | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> list[IncomingSms]:
        """Inbound SMS for one day (`date`) or a window (`start`..`end`), account timezone."""
        params = format_incoming_window(date, start, end)
        return self._signed("incoming", params, lambda body: parse_incoming(body, self.response_format))

    def blacklist_find(self, phone: str) -> BlacklistEntry | None:
        number = normalize_phone(phone, default_region=self.default_region)
        return self._signed(
            "find_on_stop",
            {"phone": number},
            lambda body: parse_blacklist_find(body, self.response_format, number),
        )

    def blacklist_add(self, phone: str) -> str:
        """Adds the number to the account's stop list; returns the entry id. An already listed
        number raises PermanentError with code 20."""
        number = normalize_phone(phone, default_region=self.default_region)
        return self._signed("add2stop", {"phone": number}, lambda body: parse_blacklist_add(body, self.response_format))

    def server_time(self) -> int:
        """LightSMS's clock (timestamp.php, unsigned)."""
        body = self.transport.get(self.base_url + "timestamp.php", {}, endpoint="timestamp.php")
        try:
            return parse_timestamp(body)
        except MalformedResponseError as error:
            # timestamp.php answers a bare number and nothing else: a page here (HTML from a
            # wrong base URL, a captive portal, an outage notice) means the API is not what answered.
            raise ProviderUnavailableError(f"{error}: not LightSMS's API; check LIGHTSMS_BASE_URL") from None

    # --- plumbing ---------------------------------------------------------------------------

    def _stamp(self, endpoint: str) -> tuple[int, int]:
        """The timestamp to sign with. A failure to read LightSMS's clock happens before the request
        itself, so whatever it was, the request was not sent."""
        try:
            return self.clock.stamp()
        except (NotSentError, ProviderUnavailableError):
            raise
        except LightSmsError as error:
            raise NotSentError(f"{endpoint}.php not sent: could not read LightSMS's clock ({error})") from None

    def _signed(self, endpoint: str, params: dict[str, str], parse: Callable[[str], T]) -> T:
        for attempt in (1, 2):
            timestamp, generation = self._stamp(endpoint)
            try:
                return self._request(endpoint, params, timestamp, parse)
            except ClockRejectedError as error:
                if attempt == 2:
                    raise InvalidLoginError(
                        f"{endpoint}.php: signature refused again after a clock resync; check the login and API key",
                        code=error.code,
                    ) from None
            # Refused before anything was done: resync and re-sign once, straight away.
            try:
                self.clock.resync(signed_with=generation)
            except LightSmsError as error:
                raise ClockRejectedError(
                    f"{endpoint}.php: signature refused and the clock resync failed ({type(error).__name__})"
                ) from None
        raise AssertionError("unreachable")

    def _request(self, endpoint: str, params: dict[str, str], timestamp: int, parse: Callable[[str], T]) -> T:
        query = {**params, "login": self.login, "timestamp": str(timestamp), "return": self.response_format}
        query["signature"] = sign(query, self._api_key.reveal())
        with self._admission(f"{endpoint}.php") as write_by:
            body = self.transport.get(f"{self.base_url}{endpoint}.php", query, endpoint=f"{endpoint}.php",
                                      write_by=write_by)  # fmt: skip
        return parse(body)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> LightSmsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
