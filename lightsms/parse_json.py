"""The JSON-shaped layer under parsing.py: body -> reply dict, the error envelope, value coercion.

A body is read as JSON or XML by its first character (the format asked for only breaks a tie);
XML is turned into the JSON shapes by parse_xml. Codes may be strings or ints; a whole-request
error sits at the top ({"error": N}) or under an empty key ({"": {"error": N}}).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

from . import parse_xml
from .codes import parse_code
from .errors import LightSmsError, MalformedResponseError, error_for_code

__all__ = [
    "NO_DATA",
    "Unreadable",
    "as_decimal",
    "as_int",
    "as_text",
    "decode",
    "digits_of",
    "is_truthy",
    "lookup_reply",
    "request_error",
]

XmlShape = Callable[[Element], dict[str, object]]
ErrorClass = Callable[[str], LightSmsError]

NO_DATA = 19  # "empty response": nothing found, not a failure
_TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})


class Unreadable(Exception):
    """The body is neither JSON nor XML."""


def decode(body: str, response_format: str, xml_shape: XmlShape) -> object | None:
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
        raise Unreadable from None


def lookup_reply(body: str, response_format: str, xml_shape: XmlShape, where: str) -> object | None:
    """The reply with its error envelope removed; None for "no data" (empty, {}, [], code 19)."""
    try:
        reply = decode(body, response_format, xml_shape)
    except Unreadable:
        raise MalformedResponseError(f"{where}: unreadable reply ({len(body)} chars)") from None
    if isinstance(reply, list):
        return reply or None
    if not isinstance(reply, dict):
        if reply is None:
            return None
        raise MalformedResponseError(f"{where}: unexpected reply ({type(reply).__name__})")
    code = request_error(reply, where, MalformedResponseError)
    if code == NO_DATA:
        return None
    if code is not None and code != 0:
        raise error_for_code(code, context=where)
    rest = {key: value for key, value in reply.items() if key not in ("error", "")}
    return rest or None


def request_error(reply: dict[str, object], where: str, unreadable: ErrorClass) -> int | None:
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


def digits_of(key: object) -> str:
    text = str(key).strip().lstrip("+").replace(" ", "")
    return text if text.isdigit() and text.isascii() else ""


def as_text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).strip()


def as_decimal(value: object) -> Decimal | None:
    text = as_text(value)
    if not text:
        return None
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def as_int(value: object) -> int | None:
    text = as_text(value)
    return int(text) if text and text.isdigit() else None


def is_truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return (as_text(value) or "").lower() in _TRUE_WORDS
