"""LightSMS error codes 0-39: meaning and outcome class, in one place.

The class decides the retry policy (DESIGN.md, "Outcome classes"). Where the documentation
contradicts itself (lightsms-api.md section 5), the table follows the published code list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    OK = "ok"
    NOT_SENT = "not_sent"  # provably never reached LightSMS: safe to resend
    PERMANENT = "permanent"  # LightSMS refused it for good: never retry
    SUPPRESSION = "suppression"  # the number is on a stop list
    ACCOUNT = "account"  # the account cannot send: pause everyone
    AMBIGUOUS = "ambiguous"  # may or may not have been sent
    NO_DATA = "no_data"  # code 19: an empty answer to a lookup


@dataclass(frozen=True, slots=True)
class Code:
    code: int
    meaning: str
    outcome: Outcome


_TABLE: tuple[tuple[int, str, Outcome], ...] = (
    (0, "accepted", Outcome.OK),
    (1, "signature not specified", Outcome.PERMANENT),
    (2, "login not specified", Outcome.PERMANENT),
    (3, "text not specified", Outcome.PERMANENT),
    (4, "phone number not specified", Outcome.PERMANENT),
    (5, "sender not specified", Outcome.PERMANENT),
    # A stale timestamp plausibly surfaces as 6: resync the clock and re-sign (nothing was sent).
    (6, "invalid signature", Outcome.NOT_SENT),
    (7, "invalid login", Outcome.ACCOUNT),
    (8, "invalid sender name", Outcome.PERMANENT),
    (9, "sender name not registered", Outcome.PERMANENT),
    (10, "sender name not approved", Outcome.PERMANENT),
    (11, "text contains forbidden words", Outcome.PERMANENT),
    (12, "error sending SMS", Outcome.AMBIGUOUS),
    (13, "phone number is in the stop list", Outcome.SUPPRESSION),
    (14, "more than 50 numbers in one request", Outcome.PERMANENT),
    (15, "list not specified", Outcome.PERMANENT),
    (16, "invalid phone number", Outcome.PERMANENT),
    (17, "SMS id not specified", Outcome.PERMANENT),
    (18, "status not obtained", Outcome.NOT_SENT),
    (19, "empty response", Outcome.NO_DATA),
    (20, "phone number already exists", Outcome.PERMANENT),
    (21, "name not specified", Outcome.PERMANENT),
    (22, "template already exists", Outcome.PERMANENT),
    (23, "month not specified (YYYY-MM)", Outcome.PERMANENT),
    (24, "timestamp not specified", Outcome.NOT_SENT),
    (25, "error accessing the list", Outcome.PERMANENT),
    (26, "list contains no numbers", Outcome.PERMANENT),
    (27, "no valid numbers", Outcome.PERMANENT),
    (28, "start date not specified (YYYY-MM-DD)", Outcome.PERMANENT),
    (29, "end date not specified (YYYY-MM-DD)", Outcome.PERMANENT),
    (30, "date not specified (YYYY-MM-DD)", Outcome.PERMANENT),
    (31, "direction to the user is closed", Outcome.PERMANENT),
    (32, "insufficient funds", Outcome.ACCOUNT),
    (33, "phone number not set", Outcome.PERMANENT),
    (34, "phone number is in the global stop list", Outcome.SUPPRESSION),
    (35, "insufficient funds (billing failed)", Outcome.ACCOUNT),
    (36, "cannot obtain phone information", Outcome.PERMANENT),
    (37, "list id not specified", Outcome.PERMANENT),
    (38, "number already exists in this list", Outcome.PERMANENT),
    (39, "number does not exist in this list", Outcome.PERMANENT),
)

CODES: dict[int, Code] = {code: Code(code, meaning, outcome) for code, meaning, outcome in _TABLE}

# Codes that describe the whole request even when LightSMS reports them under a phone key.
REQUEST_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 24})
# Codes that, refusing a whole multi-phone request, may be one phone's fault (14: too many phones; a
# stop-listed, invalid or unreachable number): nothing was sent, so a sender splits the batch.
SPLIT_CODES = frozenset({13, 14, 16, 31, 33, 34, 36})
# Codes that say the signature or timestamp was refused: resync the clock before re-signing.
CLOCK_CODES = frozenset({6, 24})
# Codes that say the login is refused: the account cannot send at all.
LOGIN_CODES = frozenset({7})
# Codes that say the account has no money to send with: a probe must also see a balance for a part.
FUNDS_CODES = frozenset({32, 35})


def lookup(code: int) -> Code:
    """The table entry for a code; an unknown code is ambiguous (we cannot know what happened)."""
    found = CODES.get(code)
    if found is not None:
        return found
    return Code(code, f"unknown LightSMS error code {code}", Outcome.AMBIGUOUS)


MAX_CODE_DIGITS = 6


def parse_code(raw: object) -> int | None:
    """LightSMS sends codes as strings or ints ("0", 0, "000"). None when it is not a code: anything
    but an int or a string of at most MAX_CODE_DIGITS ASCII digits (surrounding whitespace allowed).
    str.isdigit() alone would let "²" or "١٦" through to int(), which refuses the first."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 <= raw < 10**MAX_CODE_DIGITS else None
    if isinstance(raw, str):
        text = raw.strip()
        if 0 < len(text) <= MAX_CODE_DIGITS and text.isascii() and text.isdigit():
            return int(text)
    return None
