"""Endpoint results and how they are written as JSON or XML bodies, in every shape variant.

XML shapes (the documented ones plus our choice where the docs could not be read):
  send      <response><phones><phone phone= error= id_sms= cost= count_sms= /></phones></response>
  status    <response><statuses><status id_sms= status= /></statuses></response>
  incoming  <response><sms id_sms= date= sender= phone= prefix= text= /></response>
  balance   <response><money>..</money><currency>..</currency></response>
  senders   <response><senders><sender name= state= /></senders></response>        (our choice)
  stop      <response><time_in>..</time_in><description>..</description></response> (flat)
            <response><entry id=..><time_in/><description/></entry></response>     (keyed, our choice)
            <response><blacklisted>true</blacklisted><added_at>..</added_at></response>
  add2stop  <response><id>..</id></response>
  error     <response><error>N</error></response>; empty_key/phone shapes use the send <phones> form
  empty     <response /> | <response><error>19</error></response> | an empty body
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

from simulator.config import Variants
from simulator.state import IncomingSms, StopEntry

__all__ = [
    "AddStopReply",
    "BalanceReply",
    "EmptyReply",
    "IncomingReply",
    "PhoneOutcome",
    "RequestError",
    "Result",
    "SendReply",
    "SendersReply",
    "StatusReply",
    "StopEntryReply",
    "money_text",
    "render",
]

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'


@dataclass(frozen=True)
class RequestError:
    code: int
    phones: list[str] = field(default_factory=list)  # for the "phone" error shape


@dataclass(frozen=True)
class PhoneOutcome:
    code: int
    id_sms: str | None = None
    cost: Decimal | None = None
    parts: int | None = None


@dataclass(frozen=True)
class SendReply:
    phones: dict[str, PhoneOutcome]


@dataclass(frozen=True)
class StatusReply:
    statuses: dict[str, str]


@dataclass(frozen=True)
class BalanceReply:
    money: Decimal
    currency: str


@dataclass(frozen=True)
class SendersReply:
    senders: dict[str, str]


@dataclass(frozen=True)
class StopEntryReply:
    entry: StopEntry


@dataclass(frozen=True)
class AddStopReply:
    id: str


@dataclass(frozen=True)
class IncomingReply:
    messages: list[IncomingSms]


@dataclass(frozen=True)
class EmptyReply:
    pass


Result = (
    RequestError
    | SendReply
    | StatusReply
    | BalanceReply
    | SendersReply
    | StopEntryReply
    | AddStopReply
    | IncomingReply
    | EmptyReply
)


def money_text(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.0001")), "f")


def render(result: Result, *, xml: bool, variants: Variants) -> tuple[str, bytes]:
    """(content type, body). An empty body is possible (the "" empty shape)."""
    if isinstance(result, EmptyReply) and variants.empty_shape == "":
        return (XML_TYPE if xml else JSON_TYPE), b""
    if xml:
        root = _xml(result, variants)
        return XML_TYPE, (XML_HEAD + ElementTree.tostring(root, encoding="unicode")).encode()
    body = json.dumps(_json(result, variants), ensure_ascii=False, separators=(",", ":"))
    return JSON_TYPE, body.encode()


def _code(value: int, variants: Variants) -> Any:
    return value if variants.int_codes else str(value)


def _number(value: Decimal, variants: Variants) -> Any:
    return float(value) if variants.int_codes else money_text(value)


def _error_json(error: RequestError, variants: Variants) -> dict[str, Any]:
    body = {"error": _code(error.code, variants)}
    if variants.error_shape == "empty_key":
        return {"": body}
    if variants.error_shape == "phone" and error.phones:
        return {phone: dict(body) for phone in error.phones}
    return body


def _json(result: Result, variants: Variants) -> Any:
    match result:
        case RequestError():
            return _error_json(result, variants)
        case SendReply():
            return {phone: _outcome_json(o, variants) for phone, o in result.phones.items()}
        case StatusReply():
            return dict(result.statuses)
        case BalanceReply():
            return {"money": _number(result.money, variants), "currency": result.currency}
        case SendersReply():
            return dict(result.senders)
        case StopEntryReply():
            return _stop_json(result.entry, variants)
        case AddStopReply():
            return {"id": result.id}
        case IncomingReply():
            return {
                m.id: {"date": m.date, "sender": m.sender, "phone": m.phone, "prefix": m.prefix, "text": m.text}
                for m in result.messages
            }
        case EmptyReply():
            return {"error": _code(19, variants)} if variants.empty_shape == "19" else {}


def _outcome_json(outcome: PhoneOutcome, variants: Variants) -> dict[str, Any]:
    out: dict[str, Any] = {"error": _code(outcome.code, variants)}
    if outcome.id_sms is not None:
        out["id_sms"] = outcome.id_sms
    if outcome.cost is not None:
        out["cost"] = _number(outcome.cost, variants)
    if outcome.parts is not None:
        out["count_sms"] = _code(outcome.parts, variants)
    return out


def _stop_json(entry: StopEntry, variants: Variants) -> dict[str, Any]:
    flat = {"time_in": entry.time_in, "description": entry.description}
    if variants.blacklist_shape == "keyed":
        return {entry.id: flat}
    if variants.blacklist_shape == "placeholder":
        return {"blacklisted": True, "added_at": entry.time_in}
    return flat


def _child(parent: ElementTree.Element, tag: str, content: str | None = None, /, **attrs: str) -> ElementTree.Element:
    # Positional-only content: attributes named "text" (incoming SMS) must not collide with it.
    element = ElementTree.SubElement(parent, tag, attrs)
    if content is not None:
        element.text = content
    return element


def _xml(result: Result, variants: Variants) -> ElementTree.Element:
    root = ElementTree.Element("response")
    match result:
        case RequestError():
            shape = variants.error_shape
            if shape == "empty_key" or (shape == "phone" and result.phones):
                phones = _child(root, "phones")
                for phone in result.phones if shape == "phone" else [""]:
                    _child(phones, "phone", phone=phone, error=str(result.code))
            else:
                _child(root, "error", str(result.code))
        case SendReply():
            phones = _child(root, "phones")
            for phone, outcome in result.phones.items():
                attrs = {"phone": phone, "error": str(outcome.code)}
                if outcome.id_sms is not None:
                    attrs["id_sms"] = outcome.id_sms
                if outcome.cost is not None:
                    attrs["cost"] = money_text(outcome.cost)
                if outcome.parts is not None:
                    attrs["count_sms"] = str(outcome.parts)
                _child(phones, "phone", **attrs)
        case StatusReply():
            statuses = _child(root, "statuses")
            for id_sms, word in result.statuses.items():
                _child(statuses, "status", id_sms=id_sms, status=word)
        case BalanceReply():
            _child(root, "money", money_text(result.money))
            _child(root, "currency", result.currency)
        case SendersReply():
            senders = _child(root, "senders")
            for name, state in result.senders.items():
                _child(senders, "sender", name=name, state=state)
        case StopEntryReply():
            _stop_xml(root, result.entry, variants)
        case AddStopReply():
            _child(root, "id", result.id)
        case IncomingReply():
            for m in result.messages:
                _child(root, "sms", id_sms=m.id, date=m.date, sender=m.sender, phone=m.phone,
                       prefix=m.prefix, text=m.text)
        case EmptyReply():
            if variants.empty_shape == "19":
                _child(root, "error", "19")
    return root


def _stop_xml(root: ElementTree.Element, entry: StopEntry, variants: Variants) -> None:
    if variants.blacklist_shape == "placeholder":
        _child(root, "blacklisted", "true")
        _child(root, "added_at", entry.time_in)
        return
    parent = _child(root, "entry", id=entry.id) if variants.blacklist_shape == "keyed" else root
    _child(parent, "time_in", entry.time_in)
    _child(parent, "description", entry.description)
