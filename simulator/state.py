"""Everything the simulator remembers, behind one lock: account, messages, requests, inbox, stop list."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from simulator.config import Faults, SimConfig, merge_faults, to_decimal

__all__ = ["Account", "IncomingSms", "Message", "RequestRecord", "SimState", "StopEntry"]

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
REQUEST_LOG_LIMIT = 100_000


@dataclass
class Account:
    login: str
    api_key: str
    balance: Decimal
    price: Decimal
    currency: str
    senders: dict[str, str]
    forbidden_words: list[str]
    batch_limit: int

    def __repr__(self) -> str:  # the api key stays out of every repr
        return f"Account(login={self.login!r}, balance={self.balance}, currency={self.currency!r})"


@dataclass
class Message:
    id_sms: str
    phone: str
    text: str
    sender: str
    sending_time: str | None  # as the client sent it
    sending_epoch: float | None
    accepted_at: float  # simulator clock
    deliver_at: float  # simulator clock
    final_word: str | None  # from delivery_outcomes; None = the success word of the current variant
    override: str | None = None  # set through POST /_sim/status

    def status(self, now: float, success_word: str) -> str:
        if self.override is not None:
            return self.override
        if self.sending_epoch is not None and now < self.sending_epoch:
            return "pending"
        if now < self.deliver_at:
            return "sent"
        return self.final_word or success_word


@dataclass(frozen=True)
class IncomingSms:
    id: str
    date: str  # account timezone, YYYY-MM-DD HH:MM:SS
    sender: str
    phone: str
    prefix: str
    text: str


@dataclass(frozen=True)
class StopEntry:
    id: str
    phone: str
    time_in: str
    description: str


@dataclass(frozen=True)
class RequestRecord:
    time: float  # real clock, on arrival
    endpoint: str
    outcome: str
    phones: int


class SimState:
    """Thread-safe; every public method takes the lock, so handlers can call them freely."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        self.lock = threading.RLock()
        # Ids never restart, not even on reset, so an id from before a reset cannot come back.
        self._sms_prefix = "4" + f"{int(time.time() * 1000) % 10**12:012d}"
        self._sms_counter = itertools.count(1)
        # Like LightSMS's, incoming and stop-list ids are never reused: not after a reset, and not by
        # the next simulator process either (a poller's seen marks outlive a restart of the simulator).
        self._small_ids = itertools.count(int(time.time() * 10) % 10**10)
        self.random = random.Random(config.seed)
        self.on_reset: Callable[[], None] = lambda: None  # called after each reset, outside the lock
        self.reset()

    def reset(self) -> None:
        with self.lock:
            cfg = self.config
            self.account = Account(
                login=cfg.login,
                api_key=cfg.api_key,
                balance=to_decimal("balance", cfg.balance),
                price=to_decimal("price", cfg.price),
                currency=cfg.currency,
                senders=dict(cfg.senders),
                forbidden_words=list(cfg.forbidden_words),
                batch_limit=cfg.batch_limit,
            )
            self.faults = Faults()
            self.messages: dict[str, Message] = {}
            self.requests: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
            self.incoming: list[IncomingSms] = []
            self.stop_list: dict[str, StopEntry] = {}
            self.admitted: deque[float] = deque()
        self.on_reset()

    # --- clock -----------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.faults.clock_skew

    def local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.zone)

    def local_text(self, epoch: float) -> str:
        return self.local(epoch).strftime(DATE_FORMAT)

    def epoch_of_local(self, naive: datetime) -> float:
        return naive.replace(tzinfo=self.zone).timestamp()

    # --- ids -------------------------------------------------------------------------------------
    def new_sms_id(self) -> str:
        with self.lock:
            return f"{self._sms_prefix}{next(self._sms_counter):09d}"

    def new_small_id(self) -> str:
        with self.lock:
            return str(next(self._small_ids))

    # --- requests log and rate window -----------------------------------------------------------
    def record(self, *, arrived: float, endpoint: str, outcome: str, phones: int) -> None:
        with self.lock:
            self.requests.append(RequestRecord(arrived, endpoint, outcome, phones))

    def admit(self) -> bool:
        """False when max_rps requests were already admitted in the last second."""
        with self.lock:
            limit = self.faults.max_rps
            if limit is None:
                return True
            moment = time.monotonic()
            while self.admitted and moment - self.admitted[0] >= 1.0:
                self.admitted.popleft()
            if len(self.admitted) >= limit:
                return False
            self.admitted.append(moment)
            return True

    # --- faults and account settings --------------------------------------------------------------
    def update_faults(self, update: Mapping[str, Any]) -> None:
        with self.lock:
            faults = merge_faults(self.faults, update)
            account = self.account
            balance = to_decimal("balance", update["balance"]) if "balance" in update else account.balance
            price = to_decimal("price", update["price"]) if "price" in update else account.price
            senders = dict(update.get("senders", account.senders))
            words = [str(w) for w in update.get("forbidden_words", account.forbidden_words)]
            limit = int(update.get("batch_limit", account.batch_limit))
            if any(state not in ("completed", "pending") for state in senders.values()):
                raise ValueError("sender states must be 'completed' or 'pending'")
            self.faults = faults
            account.balance, account.price, account.senders = balance, price, senders
            account.forbidden_words, account.batch_limit = words, limit

    def faults_json(self) -> dict[str, Any]:
        with self.lock:
            out = self.faults.as_json()
            out["balance"] = float(self.account.balance)
            out["price"] = float(self.account.price)
            out["forbidden_words"] = list(self.account.forbidden_words)
            out["batch_limit"] = self.account.batch_limit
            out["senders"] = dict(self.account.senders)
            return out

    def charge(self, cost: Decimal) -> bool:
        """Take `cost` off the balance; False (and nothing taken) when the balance is short."""
        with self.lock:
            if self.account.balance < cost:
                return False
            self.account.balance -= cost
            return True

    # --- messages ---------------------------------------------------------------------------------
    def add_message(self, message: Message) -> None:
        with self.lock:
            self.messages[message.id_sms] = message

    def statuses(self, ids: list[str]) -> dict[str, str]:
        with self.lock:
            now, word = self.now(), self.faults.variants.status_words
            return {i: self.messages[i].status(now, word) for i in ids if i in self.messages}

    def set_statuses(self, statuses: Mapping[str, str]) -> int:
        with self.lock:
            updated = 0
            for id_sms, word in statuses.items():
                message = self.messages.get(str(id_sms))
                if message is not None:
                    message.override = str(word)
                    updated += 1
            return updated

    def messages_json(self) -> list[dict[str, Any]]:
        with self.lock:
            now, word = self.now(), self.faults.variants.status_words
            return [
                {
                    "id_sms": m.id_sms,
                    "phone": m.phone,
                    "text": m.text,
                    "sender": m.sender,
                    "sendingTime": m.sending_time,
                    "accepted_at": m.accepted_at,
                    "status": m.status(now, word),
                }
                for m in self.messages.values()
            ]

    # --- inbox and stop list ----------------------------------------------------------------------
    def add_incoming(self, sms: IncomingSms) -> None:
        with self.lock:
            self.incoming.append(sms)

    def incoming_between(self, start: datetime, end: datetime) -> list[IncomingSms]:
        """Messages with start <= date <= end (naive datetimes in the account timezone)."""
        with self.lock:
            found = [m for m in self.incoming if start <= datetime.strptime(m.date, DATE_FORMAT) <= end]
        return sorted(found, key=lambda m: (m.date, int(m.id) if m.id.isdigit() else 0))

    def stop_entry(self, phone: str) -> StopEntry | None:
        with self.lock:
            return self.stop_list.get(phone)

    def add_stop(self, phone: str, description: str) -> StopEntry | None:
        """The new entry, or None when the phone is already listed."""
        with self.lock:
            if phone in self.stop_list:
                return None
            entry = StopEntry(self.new_small_id(), phone, self.local_text(self.now()), description)
            self.stop_list[phone] = entry
            return entry
