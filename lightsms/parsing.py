"""Reading LightSMS replies, every documented variant of them (lightsms-api.md sections 3-6).

XML is first turned into the JSON shapes (parse_xml), so the rules live here once:
- codes are strings or ints; a whole-request error sits at the top ({"error": N}), under an empty
  key ({"": {"error": N}}), or, for send.php, as the same request code under every phone;
- {} , [] , {"error": 19} and an empty body mean "no data" for lookups;
- SMS ids stay strings (22 digits: more than int64).
An unreadable send.php reply raises AmbiguousError (the SMS may have gone out); an unreadable
lookup raises MalformedResponseError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

from . import parse_xml
from .codes import REQUEST_CODES, Outcome, lookup, parse_code
from .errors import AmbiguousError, LightSmsError, MalformedResponseError, error_for_code
from .models import Balance, BlacklistEntry, DeliveryState, DeliveryStatus, IncomingSms, PhoneResult

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

XmlShape = Callable[[Element], dict[str, object]]
ErrorClass = Callable[[str], LightSmsError]

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
_NO_DATA = 19
_TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})


class _Unreadable(Exception):
    pass


def delivery_state(word: object) -> str:
    """delivered/deliver -> DELIVERED ...; pending, sent, empty and unknown words -> PENDING."""
    return _STATES.get(str(word or "").strip().lower(), DeliveryState.PENDING)


# --- send.php ---------------------------------------------------------------------------------


def parse_send(body: str, response_format: str, phones: Sequence[str]) -> list[PhoneResult]:
    """One PhoneResult per requested phone, in request order; raises for a whole-request error."""
    where = "send.php"
    try:
        reply = _decode(body, response_format, parse_xml.send_reply)
    except _Unreadable:
        raise AmbiguousError(f"{where}: unreadable reply ({len(body)} chars); it may have been sent") from None
    if reply is None:
        raise AmbiguousError(f"{where}: empty reply; it may have been sent")
    if reply == []:
        reply = {}
    if not isinstance(reply, dict):
        raise AmbiguousError(f"{where}: unexpected reply ({type(reply).__name__}); it may have been sent")
    code = _request_error(reply, where, AmbiguousError)
    # Keys are phones; compare them digits-only (a '+' or a stray space must not lose a result).
    records = {digits: value for key, value in reply.items() if (digits := _digits(key))}
    if code is not None and (code != 0 or not records):
        raise error_for_code(code, context=where)
    shared = {_record_code(value) for value in records.values()}
    if len(shared) == 1:
        only = shared.pop()
        if only is not None and only in REQUEST_CODES:
            raise error_for_code(only, context=where)
    return [_phone_result(phone, records.get(phone)) for phone in phones]


def _record_code(record: object) -> int | None:
    if isinstance(record, dict):
        if "error" in record:
            return parse_code(record["error"])
        return 0 if record.get("id_sms") not in (None, "") else None
    return parse_code(record)


def _phone_result(phone: str, record: object) -> PhoneResult:
    if record is None:
        return PhoneResult(phone, None, "no result for this phone in the reply", Outcome.AMBIGUOUS)
    code = _record_code(record)
    if code is None:
        return PhoneResult(phone, None, "unreadable result for this phone", Outcome.AMBIGUOUS)
    entry = lookup(code)
    if code != 0 or not isinstance(record, dict):
        return PhoneResult(phone, code, entry.meaning, entry.outcome)
    return PhoneResult(
        phone,
        code,
        entry.meaning,
        entry.outcome,
        id_sms=_text(record.get("id_sms")),
        cost=_decimal(record.get("cost")),
        parts=_int(record.get("count_sms")),
    )


# --- lookups ----------------------------------------------------------------------------------


def parse_status(body: str, response_format: str, ids: Sequence[str]) -> dict[str, DeliveryStatus]:
    """{id: DeliveryStatus} for the ids LightSMS knows; unknown ids are simply absent."""
    where = "status.php"
    reply = _lookup(body, response_format, parse_xml.status_reply, where)
    if not isinstance(reply, dict):
        return {}
    if "status" in reply and not any(_digits(key) for key in reply):
        # The documented placeholder {"status": .., "delivered_at": ..} names no id.
        if len(ids) != 1:
            raise MalformedResponseError(f"{where}: a reply without ids for {len(ids)} ids")
        word = _text(reply["status"]) or ""
        return {ids[0]: DeliveryStatus(ids[0], word, delivery_state(word))}
    statuses: dict[str, DeliveryStatus] = {}
    for key, value in reply.items():
        sms_id = _digits(key)
        if not sms_id:
            continue
        word = _status_word(value)
        statuses[sms_id] = DeliveryStatus(sms_id, word, delivery_state(word))
    return statuses


def _status_word(value: object) -> str:
    if not isinstance(value, dict):
        return _text(value) or ""
    if "status" in value:
        return _text(value["status"]) or ""
    # e.g. {"error": "18"}, status not obtained yet: not final, keep polling.
    return f"error {_text(value.get('error')) or '?'}"


def parse_balance(body: str, response_format: str) -> Balance:
    where = "balance.php"
    reply = _lookup(body, response_format, parse_xml.balance_reply, where)
    money = _decimal(reply.get("money")) if isinstance(reply, dict) else None
    if money is None or not isinstance(reply, dict):
        raise MalformedResponseError(f"{where}: no readable balance in the reply")
    return Balance(money=money, currency=_text(reply.get("currency")))


def parse_senders(body: str, response_format: str) -> dict[str, str]:
    """{sender name: state}, e.g. {"LightSMS": "completed", "Pending": "pending"}."""
    reply = _lookup(body, response_format, parse_xml.senders_reply, "senders.php")
    senders: dict[str, str] = {}
    if isinstance(reply, dict):
        for name, value in reply.items():
            state = value.get("state", value.get("status")) if isinstance(value, dict) else value
            senders[str(name)] = _text(state) or ""
    elif isinstance(reply, list):
        for item in reply:
            if isinstance(item, dict):
                name = _text(item.get("name", item.get("sender")))
                if name:
                    senders[name] = _text(item.get("state", item.get("status"))) or ""
            elif isinstance(item, str):
                senders[item] = ""
    return senders


def parse_incoming(body: str, response_format: str) -> list[IncomingSms]:
    where = "incoming.php"
    reply = _lookup(body, response_format, parse_xml.incoming_reply, where)
    if isinstance(reply, dict):
        items = list(reply.items())
    elif isinstance(reply, list):
        items = [("", item) for item in reply]
    else:
        return []
    messages: list[IncomingSms] = []
    for key, record in items:
        if not isinstance(record, dict):
            raise MalformedResponseError(f"{where}: an incoming message that is not a record")
        sms_id = _text(record.get("id_sms", record.get("id"))) or key
        if not sms_id:
            raise MalformedResponseError(f"{where}: an incoming message without an id")
        messages.append(
            IncomingSms(
                id=sms_id,
                date=_text(record.get("date")) or "",
                sender=_text(record.get("sender")) or "",
                phone=_text(record.get("phone")),
                prefix=_text(record.get("prefix")),
                text=_text(record.get("text")) or "",
            )
        )
    return messages


def parse_blacklist_find(body: str, response_format: str, phone: str) -> BlacklistEntry | None:
    """The stop-list entry for `phone`, or None when it is not listed."""
    where = "find_on_stop.php"
    reply = _lookup(body, response_format, parse_xml.find_on_stop_reply, where)
    if not isinstance(reply, dict):
        return None
    if "blacklisted" in reply:  # the placeholder shape {"blacklisted": true, "added_at": ..}
        if not _truthy(reply["blacklisted"]):
            return None
        added = _text(reply.get("added_at", reply.get("time_in")))
        return BlacklistEntry(phone, added, _text(reply.get("description")))
    if "time_in" in reply or "description" in reply:
        return BlacklistEntry(phone, _text(reply.get("time_in")), _text(reply.get("description")))
    for value in reply.values():  # keyed by stop-list entry id
        if isinstance(value, dict):
            return BlacklistEntry(phone, _text(value.get("time_in")), _text(value.get("description")))
    raise MalformedResponseError(f"{where}: unexpected reply shape")


def parse_blacklist_add(body: str, response_format: str) -> str:
    """The stop-list entry id of the added number."""
    where = "add2stop.php"
    reply = _lookup(body, response_format, parse_xml.add2stop_reply, where)
    entry_id = _text(reply.get("id")) if isinstance(reply, dict) else None
    if not entry_id:
        raise MalformedResponseError(f"{where}: no entry id in the reply")
    return entry_id


def parse_timestamp(body: str) -> int:
    text = body.strip().lstrip("\ufeff").strip()
    try:
        return int(text) if text.isdigit() else int(float(text))
    except (ValueError, OverflowError):
        raise MalformedResponseError(f"timestamp.php: not a Unix time ({len(body)} chars)") from None


# --- shared -----------------------------------------------------------------------------------


def _decode(body: str, response_format: str, xml_shape: XmlShape) -> object | None:
    """JSON or XML by the body's first character (the format asked for only breaks a tie);
    None for an empty body."""
    text = body.strip().lstrip("\ufeff").strip()
    if not text:
        return None
    try:
        if text[0] == "<" or (text[0] not in "{[" and response_format == "xml"):
            return xml_shape(parse_xml.load_xml(text))
        return json.loads(text)
    except (ValueError, ParseError):
        raise _Unreadable from None


def _lookup(body: str, response_format: str, xml_shape: XmlShape, where: str) -> object | None:
    """The reply with its error envelope removed; None for "no data" (empty, {}, [], code 19)."""
    try:
        reply = _decode(body, response_format, xml_shape)
    except _Unreadable:
        raise MalformedResponseError(f"{where}: unreadable reply ({len(body)} chars)") from None
    if isinstance(reply, list):
        return reply or None
    if not isinstance(reply, dict):
        if reply is None:
            return None
        raise MalformedResponseError(f"{where}: unexpected reply ({type(reply).__name__})")
    code = _request_error(reply, where, MalformedResponseError)
    if code == _NO_DATA:
        return None
    if code is not None and code != 0:
        raise error_for_code(code, context=where)
    rest = {key: value for key, value in reply.items() if key not in ("error", "")}
    return rest or None


def _request_error(reply: dict[str, object], where: str, unreadable: ErrorClass) -> int | None:
    """The code of a top-level {"error": N} or {"": {"error": N}}; None when there is none."""
    raw: object = None
    if "error" in reply and not isinstance(reply["error"], dict | list):
        raw = reply["error"]
    else:
        inner = reply.get("")
        if isinstance(inner, dict) and "error" in inner:
            raw = inner["error"]
        elif inner is not None and not isinstance(inner, dict | list):
            raw = inner
    if raw is None:
        return None
    code = parse_code(raw)
    if code is None:
        raise unreadable(f"{where}: an error that is not a LightSMS code")
    return code


def _digits(key: object) -> str:
    text = str(key).strip().lstrip("+").replace(" ", "")
    return text if text.isdigit() and text.isascii() else ""


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).strip()


def _decimal(value: object) -> Decimal | None:
    text = _text(value)
    if not text:
        return None
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _int(value: object) -> int | None:
    text = _text(value)
    return int(text) if text and text.isdigit() else None


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return (_text(value) or "").lower() in _TRUE_WORDS
