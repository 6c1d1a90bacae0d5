"""The JSON-shaped layer under parsing.py: body -> reply dict, the error envelope, value coercion.

A body is read as JSON or XML by its first character (the format asked for only breaks a tie);
XML is turned into the JSON shapes by parse_xml. Codes may be strings or ints; a whole-request
error sits at the top ({"error": N}) or under an empty key ({"": {"error": N}}).

Whatever the body, decode() raises nothing but Unreadable, and the readers below (as_text,
as_decimal, as_int, digits_of) never raise: they return None (or "") for what they cannot read.
Numbers are read from ASCII digits only and bounded in length, so a "²" that str.isdigit()
accepts, or 5000 digits that int() refuses, are simply unreadable. A JSON key repeated with a
different value becomes a parse_xml.Conflict; NaN and Infinity become unreadable NOT_A_NUMBER.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

from . import parse_xml
from .codes import parse_code
from .errors import LightSmsError, MalformedResponseError, error_for_code
from .parse_xml import Conflict, combine

__all__ = [
    "NOT_A_NUMBER",
    "NO_DATA",
    "Unreadable",
    "as_decimal",
    "as_int",
    "as_text",
    "decode",
    "digits_of",
    "is_truthy",
    "lookup_reply",
    "request_code",
    "request_error",
]

XmlShape = Callable[[Element], dict[str, object]]
ErrorClass = Callable[[str], LightSmsError]

NO_DATA = 19  # "empty response": nothing found, not a failure
_TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})

MAX_INT_DIGITS = 18  # as_int; a JSON integer longer than MAX_JSON_INT_DIGITS stays text
MAX_JSON_INT_DIGITS = 64
MAX_DECIMAL_CHARS = 64
MAX_DECIMAL = Decimal(10) ** 15  # no balance, price or total comes near: past it, a number is nonsense
MAX_KEY_DIGITS = 32  # phones have at most 15 digits, SMS ids 22
# ASCII only: Decimal() itself would take "١٢", "1_000", "NaN" and "1e999999".
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]{1,2})?", re.ASCII)


class Unreadable(Exception):
    """The body is neither JSON nor XML, or is too deeply nested to read."""


class _NotANumber:
    """JSON's NaN, Infinity and -Infinity: one object, so that a repeated key holding NaN twice agrees."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_A_NUMBER"


NOT_A_NUMBER = _NotANumber()


def _json_int(text: str) -> object:
    # int() raises past 4300 digits, and such a number is nonsense here anyway: keep it as text,
    # which every reader refuses for its length. A sign ("-0", "-5") also stays text: codes and
    # counts are unsigned, and as_decimal reads a signed text as well as a number.
    if text[0] == "-" or len(text) > MAX_JSON_INT_DIGITS:
        return text
    return int(text)


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    reply: dict[str, object] = {}
    for key, value in pairs:
        reply[key] = combine(reply[key], value) if key in reply else value
    return reply


def decode(body: str, response_format: str, xml_shape: XmlShape) -> object | None:
    """JSON or XML by the body's first character (the format asked for only breaks a tie);
    None for an empty body. Raises Unreadable, and nothing else, for a body it cannot read."""
    if not isinstance(body, str):
        raise Unreadable
    text = body.strip().lstrip("\ufeff").strip()
    if not text:
        return None
    try:
        if text[0] == "<" or (text[0] not in "{[" and response_format == "xml"):
            return xml_shape(parse_xml.load_xml(text))
        return json.loads(
            text, parse_int=_json_int, parse_constant=lambda _: NOT_A_NUMBER, object_pairs_hook=_json_object
        )
    except (ValueError, LookupError, ParseError, RecursionError):
        # ValueError: bad JSON, a lone surrogate, a multi-byte XML encoding; LookupError: an unknown
        # XML encoding; RecursionError: nesting deeper than the interpreter's stack.
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


def request_code(reply: dict[str, object]) -> tuple[bool, int | None]:
    """(present, code) of a top-level {"error": N} or {"": {"error": N}} / {"": N}: (False, None)
    when there is none, (True, None) when there is one that is not a LightSMS code."""
    raw: object = reply.get("error")
    if raw is None:
        inner = reply.get("")
        if isinstance(inner, dict):
            raw = inner.get("error")
        elif not isinstance(inner, list) or isinstance(inner, Conflict):
            raw = inner
    if raw is None:
        return False, None
    return True, parse_code(raw)


def request_error(reply: dict[str, object], where: str, unreadable: ErrorClass) -> int | None:
    """The code of a top-level {"error": N} or {"": {"error": N}}; None when there is none.
    Raises `unreadable` when there is one that is not a LightSMS code."""
    present, code = request_code(reply)
    if present and code is None:
        raise unreadable(f"{where}: an error that is not a LightSMS code")
    return code


def digits_of(key: object) -> str:
    """A phone or SMS id as ASCII digits ("+370 612 34567" -> "37061234567"); "" when it is not one."""
    if not isinstance(key, str):
        return ""
    text = key.strip().lstrip("+").replace(" ", "")
    return text if 0 < len(text) <= MAX_KEY_DIGITS and text.isascii() and text.isdigit() else ""


def as_text(value: object) -> str | None:
    """A string (stripped), an int or a finite float as text; None for anything else (null, bools,
    lists, dicts, NaN, infinities, conflicting duplicates)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value - value == 0:  # finite
        return repr(value)
    return None


def as_decimal(value: object) -> Decimal | None:
    """A Decimal of magnitude below MAX_DECIMAL from plain ASCII notation ("0.0144", "0,0144", "-12",
    "1e-05"); None otherwise. Callers narrow the range (a cost is not a balance)."""
    text = as_text(value)
    if not text or len(text) > MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(text):
        return None
    try:
        number = Decimal(text.replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < MAX_DECIMAL else None


def as_int(value: object) -> int | None:
    """A non-negative int: an int, or a string of at most MAX_INT_DIGITS ASCII digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**MAX_INT_DIGITS else None
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= MAX_INT_DIGITS and text.isascii() and text.isdigit():
            return int(text)
    return None


def is_truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return (as_text(value) or "").lower() in _TRUE_WORDS
