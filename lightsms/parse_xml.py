"""LightSMS XML replies turned into the shapes of its JSON replies, so one interpreter reads both.

The XML shapes are only partly documented (lightsms-api.md): values may come as attributes or as
child elements, lists may or may not have a wrapper element, and errors may be an <error> child,
an `error` attribute, or the root element itself. Each function accepts all of those.
The XML comes from LightSMS only, so xml.etree is used without defusedxml; expat (2.4.1 and later)
refuses entity amplification, and external entities are never fetched.

A phone or an id that appears twice with different values becomes a Conflict (as a repeated key in
a JSON object does): a reply that contradicts itself about one phone says nothing readable about it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

__all__ = [
    "Conflict",
    "add2stop_reply",
    "balance_reply",
    "combine",
    "find_on_stop_reply",
    "incoming_reply",
    "load_xml",
    "send_reply",
    "senders_reply",
    "status_reply",
]

Reply = dict[str, object]


class Conflict(list[object]):
    """Different values found under one key. A list, so a reader that wants a code, a scalar or a
    record finds none of them here."""


def combine(previous: object, value: object) -> object:
    """The value of a key seen twice: the value when both agree, else a Conflict holding both."""
    try:
        if previous == value:
            return value
    except RecursionError:  # two deeply nested values: too deep to compare is not "the same"
        pass
    if isinstance(previous, Conflict):
        return Conflict([*previous, value])
    return Conflict([previous, value])


def _put(reply: Reply, key: str, value: object) -> None:
    reply[key] = combine(reply[key], value) if key in reply else value


def load_xml(body: str) -> ET.Element:
    # ElementTree refuses a str that carries an encoding declaration only for some encodings;
    # bytes always work and let the declaration speak.
    return ET.fromstring(body.encode("utf-8"))


def fields(element: ET.Element) -> dict[str, str]:
    """Attributes plus the text of leaf children: <x a="1"><b>2</b></x> -> {"a": "1", "b": "2"}."""
    found = dict(element.attrib)
    for child in element:
        if len(child) == 0 and not child.attrib:
            found.setdefault(child.tag, (child.text or "").strip())
    return found


def top_error(root: ET.Element) -> str | None:
    """A whole-reply error: <error>N</error> as root, <response error="N">, or <response><error>N</error>."""
    if root.tag == "error":
        return (root.text or "").strip()
    if "error" in root.attrib:
        return root.attrib["error"]
    child = root.find("error")
    if child is not None and len(child) == 0:
        return (child.text or "").strip()
    return None


def _reply(record: Mapping[str, object]) -> Reply:
    return dict(record)


def _with_top_error(root: ET.Element, reply: Reply) -> Reply:
    code = top_error(root)
    if code is not None:
        reply = {"error": code, **reply}
    return reply


def send_reply(root: ET.Element) -> Reply:
    """<response><phones><phone phone=".." error=".." id_sms=".."/></phones></response>
    -> {"<phone>": {"error": .., "id_sms": ..}} (a phone="" element is the request-level error)."""
    reply: Reply = {}
    for element in root.iter("phone"):
        if element is root or (len(element) == 0 and not element.attrib):
            continue  # a bare <phone>number</phone> is a field of its record, not a record
        record = fields(element)
        key = record.pop("phone", None)
        if key is None:
            key = (element.text or "").strip()
        _put(reply, key, record)
    return _with_top_error(root, reply)


def status_reply(root: ET.Element) -> Reply:
    """<statuses><status id_sms=".." status=".."/></statuses> -> {"<id>": "<word>"}; a bare
    <status>word</status> without an id is the documented placeholder {"status": .., ...}."""
    reply: Reply = {}
    for element in root.iter():
        if element is root:
            continue
        sms_id = element.get("id_sms") or element.get("id")
        if sms_id is None:
            continue
        word = element.get("status")
        if word is None:
            word = fields(element).get("status", (element.text or "").strip())
        _put(reply, sms_id, word)
    if reply:
        return _with_top_error(root, reply)
    return _reply(fields(root)) if root.tag != "error" else {"error": top_error(root)}


def balance_reply(root: ET.Element) -> Reply:
    reply: Reply = dict(fields(root))
    for name in ("money", "currency"):
        if name not in reply:
            found = next((e for e in root.iter() if e is not root and (e.tag == name or name in e.attrib)), None)
            if found is not None:
                reply[name] = found.get(name) if name in found.attrib else (found.text or "").strip()
    return reply if root.tag != "error" else {"error": top_error(root)}


def senders_reply(root: ET.Element) -> Reply:
    """<senders><sender name="X" state="completed"/></senders>, <sender name="X">completed</sender>
    or <sender state="completed">X</sender> -> {"X": "completed"}."""
    reply: Reply = {}
    for element in root.iter("sender"):
        record = fields(element)
        text = (element.text or "").strip()
        name = record.get("name") or record.get("sender")
        state = record.get("state") or record.get("status")
        if name is None:
            name, text = text, ""
        if state is None:
            state = text
        if name:
            reply[name] = state
    return _with_top_error(root, reply)


def incoming_reply(root: ET.Element) -> Reply:
    """<response>[<wrapper>]<sms id_sms=".." date=".." .../>...</response> -> {"<id>": {...}}.

    Any other root (an HTML page that happens to be well-formed, say) is refused, not read as "no
    messages": the poller would move its cursor past messages it never saw."""
    if root.tag not in ("response", "error"):
        raise ValueError("not a LightSMS reply")
    reply: Reply = {}
    for index, element in enumerate(root.iter("sms")):
        if element is root:
            continue
        record = fields(element)
        sms_id = record.pop("id_sms", None) or record.pop("id", None) or f"#{index}"
        _put(reply, sms_id, record)
    return _with_top_error(root, reply)


def find_on_stop_reply(root: ET.Element) -> Reply:
    """The first element holding time_in/description (flat or inside an entry), or the
    blacklisted/added_at placeholder; {} when there is none."""
    for element in root.iter():
        record = fields(element)
        if {"time_in", "description", "blacklisted", "added_at"} & record.keys():
            return _reply(record)
    code = top_error(root)
    return {"error": code} if code is not None else {}


def add2stop_reply(root: ET.Element) -> Reply:
    reply: Reply = dict(fields(root))
    if "id" not in reply:
        found = next((e for e in root.iter("id") if e is not root), None)
        if found is not None:
            reply["id"] = (found.text or "").strip()
    code = top_error(root)
    return {"error": code} if code is not None else reply
