"""Authentication and request validation, in the order the contract fixes; each check returns a code."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

import phonenumbers

from lightsms.signing import sign
from simulator.state import Account

__all__ = [
    "auth_error",
    "forbidden_word_in",
    "parse_local",
    "send_request_error",
    "split_phones",
    "valid_phone",
]

# Alphanumeric sender: starts with a letter, 3-11 of letters, digits, space, hyphen. Numeric: up to 15 digits.
_ALPHA_SENDER = re.compile(r"[A-Za-z][A-Za-z0-9 \-]{2,10}")
_NUMERIC_SENDER = re.compile(r"[0-9]{1,15}")
_DIGITS = re.compile(r"[0-9]{10,15}")


def auth_error(params: Mapping[str, str], account: Account, *, now: float, window: float) -> int | None:
    """1, 2, 24, 7, 6 (stale timestamp), 6 (bad signature), or None when the request is authentic."""
    signature = params.get("signature", "")
    if not signature:
        return 1
    login = params.get("login", "")
    if not login:
        return 2
    timestamp = params.get("timestamp", "")
    if not timestamp:
        return 24
    if login != account.login:
        return 7
    try:
        skew = abs(int(timestamp) - now)
    except ValueError:
        return 6
    if skew > window:
        return 6
    expected = sign(params, account.api_key)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return 6
    return None


def send_request_error(params: Mapping[str, str], account: Account) -> int | None:
    """The whole-request codes of send.php: 3, 4, 5, 8, 9, 10, 11, 14."""
    text = params.get("text", "")
    if not text:
        return 3
    if not split_phones(params.get("phone", "")):
        return 4
    sender = params.get("sender", "")
    if not sender:
        return 5
    if not (_ALPHA_SENDER.fullmatch(sender) or _NUMERIC_SENDER.fullmatch(sender)):
        return 8
    if sender not in account.senders:
        return 9
    if account.senders[sender] != "completed":
        return 10
    if forbidden_word_in(text, account.forbidden_words):
        return 11
    if len(split_phones(params["phone"])) > account.batch_limit:
        return 14
    return None


def split_phones(raw: str) -> list[str]:
    """The comma-separated phones, blanks dropped, duplicates folded (the reply is keyed by phone)."""
    return list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))


@lru_cache(maxsize=65536)
def valid_phone(phone: str) -> bool:
    if not _DIGITS.fullmatch(phone):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + phone))
    except phonenumbers.NumberParseException:
        return False


def forbidden_word_in(text: str, words: list[str]) -> bool:
    lowered = text.casefold()
    return any(word.casefold() in lowered for word in words if word)


def parse_local(value: str, formats: tuple[str, ...]) -> datetime | None:
    """A naive datetime (account timezone) from the first matching format, else None."""
    for fmt in formats:
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    return None
