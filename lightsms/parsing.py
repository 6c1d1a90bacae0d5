"""Reading LightSMS replies, every documented variant of them (lightsms-api.md sections 3-6).

XML is first turned into the JSON shapes (parse_xml; the envelope is read in parse_json), so the
rules live here once:
- codes are strings or ints; a whole-request error sits at the top ({"error": N}), under an empty
  key ({"": {"error": N}}), or, for send.php, as the same request code under every phone;
- {} , [] , {"error": 19} and an empty body mean "no data" for lookups;
- SMS ids stay strings (22 digits: more than int64).
An unreadable send.php reply raises AmbiguousError (the SMS may have gone out); an unreadable
lookup raises MalformedResponseError. No other exception leaves a parse_* function, whatever the
body: hostile replies are tested in tests/lightsms/test_parsing_hostile.py.

In a send.php reply each phone stands alone: a phone whose code cannot be read is AMBIGUOUS, and
one with error 0 is accepted even when its id_sms, cost or count_sms cannot be read (those are
left None and named in PhoneResult.unreadable). A phone the reply contradicts itself about (two
different records) is AMBIGUOUS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

from . import parse_xml
from .codes import REQUEST_CODES, Outcome, lookup, parse_code
from .errors import AmbiguousError, MalformedResponseError, error_for_code
from .models import Balance, BlacklistEntry, DeliveryState, DeliveryStatus, IncomingSms, PhoneResult
from .parse_json import (
    Unreadable,
    as_decimal,
    as_int,
    as_text,
    decode,
    digits_of,
    is_truthy,
    lookup_reply,
    request_code,
)
from .parse_xml import Conflict, combine

__all__ = [
    "delivery_state",
    "parse_balance",
    "parse_blacklist_add",
    "parse_blacklist_find",
    "parse_incoming",
    "parse_send",
    "parse_senders",
    "parse_status",
    "parse_timestamp",
]

T = TypeVar("T")

_STATES = {
    "delivered": DeliveryState.DELIVERED,
    "deliver": DeliveryState.DELIVERED,
    "not_deliver": DeliveryState.UNDELIVERED,
    "not_delivered": DeliveryState.UNDELIVERED,
    "undelivered": DeliveryState.UNDELIVERED,
    "expired": DeliveryState.EXPIRED,
    "partly_deliver": DeliveryState.PARTLY_DELIVERED,
    "partly_delivered": DeliveryState.PARTLY_DELIVERED,
}


def delivery_state(word: object) -> str:
    """delivered/deliver -> DELIVERED ...; pending, sent, empty and unknown words -> PENDING."""
    return _STATES.get(str(word or "").strip().lower(), DeliveryState.PENDING)


# --- send.php ---------------------------------------------------------------------------------


def parse_send(body: str, response_format: str, phones: Sequence[str]) -> list[PhoneResult]:
    """One PhoneResult per requested phone, in request order; raises for a whole-request error
    (unless a phone beside it was accepted, with an id_sms)."""
    where = "send.php"
    try:
        reply = decode(body, response_format, parse_xml.send_reply)
    except Unreadable:
        raise AmbiguousError(f"{where}: unreadable reply ({len(body)} chars); it may have been sent") from None
    if reply is None:
        raise AmbiguousError(f"{where}: empty reply; it may have been sent")
    if reply == []:
        reply = {}
    if not isinstance(reply, dict):
        raise AmbiguousError(f"{where}: unexpected reply ({type(reply).__name__}); it may have been sent")
    # Keys are phones; compare them digits-only (a '+' or a stray space must not lose a result).
    records: dict[str, object] = {}
    for key, value in reply.items():
        if digits := digits_of(key):
            records[digits] = combine(records[digits], value) if digits in records else value
    present, code = request_code(reply)
    if present and code is None and not records:
        raise AmbiguousError(f"{where}: an error that is not a LightSMS code; it may have been sent")
    # (An unreadable top-level error beside per-phone results is left to the phones; so is any error
    # beside a phone LightSMS accepted, with its id: raising would send that phone again, or fail it,
    # though sent. A bare 0 beside it proves too little to override it.)
    if code is not None and (code != 0 or not records) and not any(map(_accepted_record, records.values())):
        raise error_for_code(code, context=where)
    shared = {_record_code(value) for value in records.values()}
    if len(shared) == 1:
        only = shared.pop()
        if only is not None and only in REQUEST_CODES:
            raise error_for_code(only, context=where)
    return [_phone_result(phone, records.get(phone)) for phone in phones]


def _accepted_record(record: object) -> bool:
    return isinstance(record, dict) and _record_code(record) == 0 and _id_sms(record.get("id_sms")) is not None


def _record_code(record: object) -> int | None:
    if isinstance(record, dict):
        if "error" in record:
            return parse_code(record["error"])
        # No code, but an id: LightSMS accepted it.
        return 0 if _id_sms(record.get("id_sms")) else None
    return parse_code(record)


def _phone_result(phone: str, record: object) -> PhoneResult:
    if record is None:
        return PhoneResult(phone, None, "no result for this phone in the reply", Outcome.AMBIGUOUS)
    if isinstance(record, Conflict):
        return PhoneResult(phone, None, "conflicting results for this phone", Outcome.AMBIGUOUS)
    code = _record_code(record)
    if code is None:
        return PhoneResult(phone, None, "unreadable result for this phone", Outcome.AMBIGUOUS)
    entry = lookup(code)
    if code != 0 or not isinstance(record, dict):
        return PhoneResult(phone, code, entry.meaning, entry.outcome)
    # Accepted: what follows describes the sent SMS, and cannot undo its acceptance.
    unreadable: list[str] = []
    return PhoneResult(
        phone,
        code,
        entry.meaning,
        entry.outcome,
        id_sms=_field(record, "id_sms", _id_sms, unreadable),
        cost=_field(record, "cost", _cost, unreadable),
        parts=_field(record, "count_sms", _parts, unreadable),
        unreadable=tuple(unreadable),
    )


MAX_COST = Decimal(1_000_000)  # a price above this is not a price
MAX_PARTS = 255  # LightSMS's longest message
# LightSMS's ids are 22 digits; letters, '-' and '_' are tolerated. Anything else (a ',' would
# split a status.php query, a float's '.' or '+' lost digits) is not an id.
_ID_SMS = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)


def _field(record: dict[str, object], name: str, read: Callable[[object], T | None], unreadable: list[str]) -> T | None:
    """record[name] read; a value present (not null, not blank) that cannot be read is named in `unreadable`."""
    raw = record.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    value = read(raw)
    if value is None:
        unreadable.append(name)
    return value


def _id_sms(raw: object) -> str | None:
    text = as_text(raw)
    return text if text and _ID_SMS.fullmatch(text) else None


def _cost(raw: object) -> Decimal | None:
    cost = as_decimal(raw)
    if cost is None or cost.is_signed() or cost >= MAX_COST:  # is_signed: negative, and "-0"
        return None
    return cost


def _parts(raw: object) -> int | None:
    parts = as_int(raw)
    return parts if parts is not None and 1 <= parts <= MAX_PARTS else None


# --- lookups ----------------------------------------------------------------------------------


def parse_status(body: str, response_format: str, ids: Sequence[str]) -> dict[str, DeliveryStatus]:
    """{id: DeliveryStatus} for the ids LightSMS knows; unknown ids are simply absent."""
    where = "status.php"
    reply = lookup_reply(body, response_format, parse_xml.status_reply, where)
    if not isinstance(reply, dict):
        return {}
    if "status" in reply and not any(digits_of(key) for key in reply):
        # The documented placeholder {"status": .., "delivered_at": ..} names no id.
        if len(ids) != 1:
            raise MalformedResponseError(f"{where}: a reply without ids for {len(ids)} ids")
        word = as_text(reply["status"]) or ""
        return {ids[0]: DeliveryStatus(ids[0], word, delivery_state(word))}
    statuses: dict[str, DeliveryStatus] = {}
    for key, value in reply.items():
        sms_id = digits_of(key)
        if not sms_id:
            continue
        word = _status_word(value)
        statuses[sms_id] = DeliveryStatus(sms_id, word, delivery_state(word))
    return statuses


def _status_word(value: object) -> str:
    if not isinstance(value, dict):
        return as_text(value) or ""
    if "status" in value:
        return as_text(value["status"]) or ""
    # e.g. {"error": "18"}, status not obtained yet: not final, keep polling.
    return f"error {as_text(value.get('error')) or '?'}"


def parse_balance(body: str, response_format: str) -> Balance:
    where = "balance.php"
    reply = lookup_reply(body, response_format, parse_xml.balance_reply, where)
    money = as_decimal(reply.get("money")) if isinstance(reply, dict) else None
    if money is None or not isinstance(reply, dict):
        raise MalformedResponseError(f"{where}: no readable balance in the reply")
    return Balance(money=money, currency=as_text(reply.get("currency")))


def parse_senders(body: str, response_format: str) -> dict[str, str]:
    """{sender name: state}, e.g. {"LightSMS": "completed", "Pending": "pending"}."""
    reply = lookup_reply(body, response_format, parse_xml.senders_reply, "senders.php")
    senders: dict[str, str] = {}
    if isinstance(reply, dict):
        for name, value in reply.items():
            state = value.get("state", value.get("status")) if isinstance(value, dict) else value
            senders[str(name)] = as_text(state) or ""
    elif isinstance(reply, list):
        for item in reply:
            if isinstance(item, dict):
                name = as_text(item.get("name", item.get("sender")))
                if name:
                    senders[name] = as_text(item.get("state", item.get("status"))) or ""
            elif isinstance(item, str):
                senders[item] = ""
    return senders


def parse_incoming(body: str, response_format: str) -> list[IncomingSms]:
    """Every listed SMS, in reply order. A record that is not a record, or has no id, comes back with
    `problem` set instead of raising: one malformed item must not stop the others. Only a reply that
    cannot be read as a whole raises (MalformedResponseError, or the class of its error code)."""
    where = "incoming.php"
    reply = lookup_reply(body, response_format, parse_xml.incoming_reply, where)
    if isinstance(reply, dict):
        items = list(reply.items())
    elif isinstance(reply, list):
        items = [("", item) for item in reply]
    else:
        return []
    # One id with two different messages (a repeated key): keep both, the poller dedupes by id.
    items = [(key, each) for key, record in items for each in (record if isinstance(record, Conflict) else [record])]
    return [_incoming_sms(key, record) for key, record in items]


# LightSMS's ids are a few digits (incoming) to 22 (id_sms): anything past this is not an id.
MAX_INCOMING_ID = 64


def _incoming_sms(key: str, record: object) -> IncomingSms:
    # parse_xml names an <sms> without an id "#<index>": that is a position, not an id.
    key_id = "" if key.startswith("#") else key.strip()
    if not isinstance(record, dict):
        return IncomingSms(key_id, None, None, None, None, None, problem="not a record")
    sms_id = as_text(record.get("id_sms", record.get("id"))) or key_id
    problem = "no id" if not sms_id else "an id too long to be one" if len(sms_id) > MAX_INCOMING_ID else None
    return IncomingSms(
        id=sms_id,
        date=as_text(record.get("date")),
        sender=as_text(record.get("sender")),
        phone=as_text(record.get("phone")),
        prefix=as_text(record.get("prefix")),
        text=as_text(record.get("text")),
        problem=problem,
    )


def parse_blacklist_find(body: str, response_format: str, phone: str) -> BlacklistEntry | None:
    """The stop-list entry for `phone`, or None when it is not listed."""
    where = "find_on_stop.php"
    reply = lookup_reply(body, response_format, parse_xml.find_on_stop_reply, where)
    if not isinstance(reply, dict):
        return None
    if "blacklisted" in reply:  # the placeholder shape {"blacklisted": true, "added_at": ..}
        if not is_truthy(reply["blacklisted"]):
            return None
        added = as_text(reply.get("added_at", reply.get("time_in")))
        return BlacklistEntry(phone, added, as_text(reply.get("description")))
    if "time_in" in reply or "description" in reply:
        return BlacklistEntry(phone, as_text(reply.get("time_in")), as_text(reply.get("description")))
    for value in reply.values():  # keyed by stop-list entry id
        if isinstance(value, dict):
            return BlacklistEntry(phone, as_text(value.get("time_in")), as_text(value.get("description")))
    raise MalformedResponseError(f"{where}: unexpected reply shape")


def parse_blacklist_add(body: str, response_format: str) -> str:
    """The stop-list entry id of the added number."""
    where = "add2stop.php"
    reply = lookup_reply(body, response_format, parse_xml.add2stop_reply, where)
    entry_id = as_text(reply.get("id")) if isinstance(reply, dict) else None
    if not entry_id:
        raise MalformedResponseError(f"{where}: no entry id in the reply")
    return entry_id


_UNIX_TIME = re.compile(r"([0-9]{1,12})(?:\.[0-9]{0,9})?", re.ASCII)


def parse_timestamp(body: str) -> int:
    """Unix seconds from timestamp.php's bare number: ASCII digits, an optional fraction, nothing else."""
    text = body.strip().lstrip("\ufeff").strip() if isinstance(body, str) else ""
    found = _UNIX_TIME.fullmatch(text)
    if found is None:
        raise MalformedResponseError(f"timestamp.php: not a Unix time ({len(text)} chars)")
    return int(found.group(1))
