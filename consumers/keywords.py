"""The keyword router: a ready handler for `sms.inbound` that answers STOP, START and HELP itself and
hands every other message to the user's handler.

A message is a keyword when its whole text, trimmed and case-folded, equals one of the words:

    stop    STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, and LIGHTSMS_LOCAL_STOP_WORDS (СТОП)
            -> the local opt-out list, one confirmation, then add2stop.php (LIGHTSMS_ADD2STOP)
    start   START, UNSTOP, YES  -> off the local opt-out list, one confirmation, a WARNING for the
            operator: LightSMS has no endpoint to take a number off its own stop list (the panel
            only), so while it is there sends to it come back 13 and are SUPPRESSED (the record says
            so, and the worker puts the number back on the local list)
    help    HELP, INFO  -> LIGHTSMS_HELP_TEXT

Replies go through `producers` like any SMS, at high priority, with an idempotency key derived from
the event id: a redelivered event never sends a second reply. No reply ever goes to a short code or
an alphanumeric sender, nor to a message that is one of our own replies coming back or that came from
our own receiving number (the loop guard; such messages reach no handler at all).

At most one automatic reply per number per LIGHTSMS_AUTO_REPLY_PERIOD, counted per kind (stop, start,
help): a subscriber who sends STOP and then, minutes later, START must be told that each took effect,
while a number repeating one word, or a machine bouncing our reply, still gets at most three replies
a period. Opting out and in happen whatever the reply limit says.

The order of a STOP matters because the confirmation must still arrive: producers refuse and workers
suppress opted-out numbers, and LightSMS answers 13 for a number on its stop list. So the confirmation
is enqueued first with `opt_out_confirmation=True` (the one message producers and workers let through
to an opted-out number), then the number joins the local list, and add2stop.php is called only once
the confirmation has left QUEUED/SENDING/DEFERRED, or after `confirmation_wait` seconds (30) anyway:
opting out must not wait on a slow queue. That wait holds this consumer, so run a few of them where
STOPs come in bursts. Logs show masked numbers, never a message's text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, Protocol

import redis

from core.client import build_client
from core.contract import event_id
from core.settings import CoreSettings, Settings, load_core_settings, load_settings
from core.states import State
from lightsms.errors import InvalidInput, PermanentError
from lightsms.phones import mask_phone, normalize_phone
from producers import OptedOutError, Producer

from .autoreply import AutoReplyGate, can_reply

__all__ = ["HELP_WORDS", "START_WORDS", "STOP_WORDS", "Keyword", "KeywordRouter", "build_router"]

log = logging.getLogger("lightsms_queue.keywords")

STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
START_WORDS = ("START", "UNSTOP", "YES")
HELP_WORDS = ("HELP", "INFO")
ADD2STOP_ALREADY_LISTED = 20
# While the confirmation is in one of these, add2stop.php would make LightSMS refuse it with 13.
NOT_YET_SENT = frozenset({State.QUEUED, State.SENDING, State.DEFERRED, State.SCHEDULED})

Handler = Callable[[dict[str, Any]], object]


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


class StopLists(Protocol):
    """What the router needs of a LightSmsClient: add2stop.php."""

    def blacklist_add(self, phone: str) -> str: ...


def _name_of(handler: Handler) -> str:
    module = getattr(handler, "__module__", None) or type(handler).__module__
    qualname = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{qualname}"


def _folded(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w.strip().casefold() for w in words if w.strip())


class KeywordRouter:
    """A handler (call it with one inbound event). Configure it explicitly, or from settings with
    `KeywordRouter.from_settings`, or from the environment with `build_router`."""

    def __init__(
        self,
        *,
        producer: Producer,
        redis_client: redis.Redis | None = None,
        stop_words: Iterable[str] = STOP_WORDS,
        start_words: Iterable[str] = START_WORDS,
        help_words: Iterable[str] = HELP_WORDS,
        stop_reply: str,
        start_reply: str,
        help_text: str,
        period: float = 3600.0,
        add2stop: bool = True,
        client_factory: Callable[[], StopLists] | None = None,
        fallback: Handler | None = None,
        sender: str | None = None,
        default_region: str | None = None,
        confirmation_wait: float = 30.0,
        poll_interval: float = 0.2,
    ) -> None:
        if add2stop and client_factory is None:
            raise ValueError("add2stop needs a client_factory that builds a LightSMS client")
        self.producer = producer
        # The opt-out list is the producer's: the one it refuses from and the workers read.
        self.store = producer.store
        self.gate = AutoReplyGate(redis_client or producer.store.redis, period=period)
        self.words: dict[str, Keyword] = {}
        for kind, words in ((Keyword.HELP, help_words), (Keyword.START, start_words), (Keyword.STOP, stop_words)):
            self.words.update(dict.fromkeys(_folded(words), kind))  # a word in two lists: stop wins
        self.replies = {Keyword.STOP: stop_reply, Keyword.START: start_reply, Keyword.HELP: help_text}
        self.own_texts = _folded(self.replies.values())
        self.add2stop = add2stop
        self.client_factory = client_factory
        self._client: StopLists | None = None
        self.fallback = fallback
        # The consumer runner names a handler by its module and qualname (handled keys, dead records):
        # a router in front of one handler is then told apart from a router in front of another.
        self.__qualname__ = f"KeywordRouter[{_name_of(fallback)}]" if fallback is not None else "KeywordRouter"
        self.sender = sender
        self.default_region = default_region
        self.confirmation_wait = confirmation_wait
        self.poll_interval = poll_interval

    @classmethod
    def from_settings(
        cls,
        settings: CoreSettings,
        *,
        producer: Producer | None = None,
        client_factory: Callable[[], StopLists] | None = None,
        **options: Any,
    ) -> KeywordRouter:
        """Words, texts, period and add2stop from the settings (LIGHTSMS_LOCAL_STOP_WORDS and the rest);
        `options` override any constructor argument."""
        if settings.lightsms_add2stop and client_factory is None and "add2stop" not in options:
            client_factory = _client_factory(load_settings())  # credentials: only when add2stop.php is used
        configured: dict[str, Any] = {
            "stop_words": (*STOP_WORDS, *settings.lightsms_local_stop_words.split(",")),
            "stop_reply": settings.lightsms_stop_reply,
            "start_reply": settings.lightsms_start_reply,
            "help_text": settings.lightsms_help_text,
            "period": settings.lightsms_auto_reply_period,
            "add2stop": settings.lightsms_add2stop,
            "client_factory": client_factory,
            "default_region": settings.lightsms_default_region,
        }
        return cls(producer=producer or Producer(settings), **{**configured, **options})

    def match(self, text: object) -> Keyword | None:
        return self.words.get(text.strip().casefold()) if isinstance(text, str) else None

    def __call__(self, event: dict[str, Any]) -> object:
        eid = event_id(event)  # a malformed event raises: the runner dead-letters it
        sender = event.get("sender")
        if self._is_a_loop(event):
            log.info("inbound %s from %s: looks like our own reply coming back; not handled", eid, mask_phone(sender))
            return None
        keyword = self.match(event.get("text"))
        if keyword is None:
            return self.fallback(event) if self.fallback is not None else None
        phone = self._subscriber(sender)
        if phone is None:
            log.info("%s from %s: a short code or alphanumeric sender; no action", keyword.upper(), mask_phone(sender))
            return None
        {Keyword.STOP: self._stop, Keyword.START: self._start, Keyword.HELP: self._help}[keyword](phone, eid)
        return None

    # -- the keywords ----------------------------------------------------------------------------
    def _stop(self, phone: str, eid: str) -> None:
        confirmation: str | None = None
        failure: Exception | None = None
        if self.gate.admit(phone, Keyword.STOP, eid):
            try:  # before the opt-out is recorded, and marked as the one message that may pass it
                confirmation = self._reply(phone, Keyword.STOP, eid, opt_out_confirmation=True)
            except Exception as exc:  # noqa: BLE001 - the opt-out must be recorded whatever the reply does
                failure = exc
        self.store.opt_out(phone)
        log.info("STOP from %s: on the local opt-out list", mask_phone(phone))
        if failure is not None:
            # The event comes again: the opt-out is done, the reply is retried. add2stop.php waits
            # for that retry: called now, LightSMS would refuse (13) the confirmation still to come.
            raise failure
        if self.add2stop:
            if confirmation is not None:
                self._wait_until_sent(confirmation, phone)
            self._add_to_stop_list(phone)

    def _start(self, phone: str, eid: str) -> None:
        self.store.opt_in(phone)
        log.warning(
            "START from %s: off the local opt-out list. LightSMS has no API to take a number off its own "
            "stop list: if add2stop.php or the panel put it there, remove it in the LightSMS panel, or "
            "sends to it will be SUPPRESSED with code 13 (and it rejoins the local list)",
            mask_phone(phone),
        )
        if self.gate.admit(phone, Keyword.START, eid):
            self._reply(phone, Keyword.START, eid)

    def _help(self, phone: str, eid: str) -> None:
        if self.gate.admit(phone, Keyword.HELP, eid):
            self._reply(phone, Keyword.HELP, eid)

    # -- helpers ---------------------------------------------------------------------------------
    def _is_a_loop(self, event: dict[str, Any]) -> bool:
        """A message from our own receiving number, or one of our own reply texts coming back."""
        sender, ours, text = event.get("sender"), event.get("phone"), event.get("text")
        if isinstance(sender, str) and isinstance(ours, str) and sender.strip() and sender.strip() == ours.strip():
            return True
        return isinstance(text, str) and text.strip().casefold() in self.own_texts

    def _subscriber(self, sender: object) -> str | None:
        if not can_reply(sender):
            return None
        try:
            return normalize_phone(sender, default_region=self.default_region)
        except InvalidInput:
            return None

    def _reply(self, phone: str, kind: Keyword, eid: str, *, opt_out_confirmation: bool = False) -> str | None:
        """Enqueue the reply; its id, or None when the number is opted out (only a STOP's confirmation
        goes to an opted-out number)."""
        try:
            return self.producer.send(
                phone, self.replies[kind], sender=self.sender, priority="high",
                idempotency_key=f"keyword-reply:{eid}", opt_out_confirmation=opt_out_confirmation,
            )  # fmt: skip
        except OptedOutError:
            log.info("%s from %s: opted out, no reply", kind.upper(), mask_phone(phone))
            return None

    def _wait_until_sent(self, message_id: str, phone: str) -> None:
        deadline = time.monotonic() + self.confirmation_wait
        while True:
            message = self.store.get(message_id)
            if message is None or message.state not in NOT_YET_SENT:
                return
            if time.monotonic() >= deadline:
                log.warning("STOP from %s: the confirmation is still %s after %g s; adding to LightSMS's stop "
                            "list anyway, so it may be SUPPRESSED (13)",
                            mask_phone(phone), message.state.value, self.confirmation_wait)  # fmt: skip
                return
            time.sleep(self.poll_interval)

    def _add_to_stop_list(self, phone: str) -> None:
        if self._client is None:
            assert self.client_factory is not None  # checked in __init__
            self._client = self.client_factory()
        try:
            self._client.blacklist_add(phone)
        except PermanentError as exc:
            if exc.code != ADD2STOP_ALREADY_LISTED:
                raise
            log.info("STOP from %s: already on LightSMS's stop list", mask_phone(phone))
            return
        log.info("STOP from %s: added to LightSMS's stop list", mask_phone(phone))


def _client_factory(settings: Settings) -> Callable[[], StopLists]:
    return lambda: build_client(settings, pool_size=1)


def build_router(fallback: Handler | None = None) -> Handler:
    """The keyword router configured from the environment (`lightsms-queue consume --keywords`), in
    front of `fallback`. With LIGHTSMS_ADD2STOP on (the default) it also reads the LightSMS
    credentials, so a missing one stops start-up with a line naming it."""
    return KeywordRouter.from_settings(load_core_settings(), fallback=fallback)
