"""Phone numbers as LightSMS wants them: international digits, no '+', no spaces."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers

from .errors import InvalidInput

__all__ = ["mask_phone", "normalize_phone"]

# Punctuation people write inside numbers; anything else (letters, '*', '#') is refused.
_SEPARATORS = re.compile(r"[\s\-().\/]")


def mask_phone(phone: object) -> str:
    """A phone number safe for logs: '37061234567' -> '370*****567'."""
    text = str(phone).strip()
    if len(text) >= 9:
        keep = 3
    elif len(text) >= 5:
        keep = 1
    else:
        return "*" * len(text)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]


def normalize_phone(raw: object, *, default_region: str | None = None) -> str:
    """'+370 612 34567', '0037061234567', '37061234567' (or '861234567' with region LT) -> '37061234567'.

    Bare digits are read as a national number of `default_region` first (when one is given, unless
    they begin with that region's country code) and otherwise as an international number without
    its '+'. With a default region, write other countries' numbers with '+' or '00'.
    Raises InvalidInput("phone", ...) for anything that is not a valid number; the message masks
    the value.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidInput("phone", f"expected a string, got {type(raw).__name__}")
    if default_region is not None and not isinstance(default_region, str):
        raise InvalidInput("default_region", f"expected a string, got {type(default_region).__name__}")
    return _normalized(str(raw), default_region)


# A phone is checked where it enters and again by each layer that takes it (the worker's screen, the
# client before send.php): phonenumbers is slow enough that the repeats were a tenth of a worker's
# CPU on a bulk send, so recent answers are kept (for text only: an unhashable input never gets here).
@functools.lru_cache(maxsize=4096)
def _normalized(raw: str, default_region: str | None) -> str:
    text = raw.strip()
    if not text:
        raise InvalidInput("phone", "empty phone number")
    cleaned = _SEPARATORS.sub("", text)
    digits = cleaned[1:] if cleaned.startswith("+") else cleaned
    if not digits.isdigit() or not digits.isascii():
        raise InvalidInput("phone", f"{mask_phone(text)!r} contains characters other than digits")
    region = _region(default_region)
    for candidate, candidate_region in _candidates(cleaned, region):
        try:
            parsed = phonenumbers.parse(candidate, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    where = f" (default region {region})" if region else ""
    raise InvalidInput("phone", f"{mask_phone(text)!r} is not a valid phone number{where}")


def _region(default_region: str | None) -> str | None:
    if not default_region:
        return None
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput("default_region", f"{default_region!r} is not an ISO 3166 region code")
    return region


def _candidates(cleaned: str, region: str | None) -> Iterator[tuple[str, str | None]]:
    if cleaned.startswith("+"):
        yield cleaned, None
        return
    if region:
        # Digits that begin with the region's own country code are that region's number written
        # internationally: read as national, '4915112345678' with DE would become +49 4915112345678.
        if cleaned.startswith(str(phonenumbers.country_code_for_region(region))):
            yield "+" + cleaned, None
        # Otherwise the region's own dialling rules first: its trunk prefix, or its international prefix.
        yield cleaned, region
    if cleaned.startswith("00"):
        yield "+" + cleaned[2:], None
    else:
        yield "+" + cleaned, None
