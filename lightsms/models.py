"""What the client returns: plain frozen dataclasses, no transport details."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .codes import Outcome


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """One recipient's outcome of a send.php call; recipients are independent of each other."""

    phone: str
    code: int | None  # None when LightSMS said nothing about this phone
    meaning: str
    outcome: Outcome
    id_sms: str | None = None  # 22 digits: larger than int64, kept as a string
    cost: Decimal | None = None
    parts: int | None = None
    # Fields of an accepted phone's record that were present but could not be read ("id_sms",
    # "cost", "count_sms"); each is left None. They never undo the acceptance.
    unreadable: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.OK


class DeliveryState:
    """Delivery states normalised from LightSMS's two vocabularies (delivered/deliver ...)."""

    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    EXPIRED = "EXPIRED"
    PARTLY_DELIVERED = "PARTLY_DELIVERED"
    PENDING = "PENDING"  # pending, sent, send, empty or an unknown word: keep polling

    FINAL = frozenset({DELIVERED, UNDELIVERED, EXPIRED})


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    id_sms: str
    raw: str  # LightSMS's own word
    state: str  # one of DeliveryState

    @property
    def final(self) -> bool:
        return self.state in DeliveryState.FINAL


@dataclass(frozen=True, slots=True)
class Balance:
    money: Decimal
    currency: str | None


@dataclass(frozen=True, slots=True)
class IncomingSms:
    """One inbound SMS as LightSMS listed it. A field LightSMS left out (or sent as something that is
    not text) is None; one it sent empty is "". `problem` says why the record could not be read at
    all (not a record, no id): one bad record never hides the others, the poller sets it aside."""

    id: str  # "" when the record has none
    date: str | None  # naive "YYYY-MM-DD HH:MM:SS" in the account's timezone, as LightSMS sent it
    sender: str | None  # the subscriber who texted
    phone: str | None  # our receiving number; older replies omit it
    prefix: str | None
    text: str | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    phone: str
    time_in: str | None
    description: str | None
