"""SMS text rules: GSM-7 or UCS-2, and how many billed parts a text takes."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set: one septet each.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: an escape plus the character, so two septets each.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True, slots=True)
class SmsParts:
    encoding: str  # GSM7 or UCS2
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int


def _units(char: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair


def encoding_of(text: str) -> str:
    return GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else UCS2


def sms_parts(text: str) -> SmsParts:
    """Encoding, length in units and part count; an escape pair or surrogate pair never splits."""
    encoding = encoding_of(text)
    single, per_part = _LIMITS[encoding]
    units = [_units(c, encoding) for c in text]
    total = sum(units)
    if total <= single:
        return SmsParts(encoding, total, 1 if total else 0)
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return SmsParts(encoding, total, parts)
