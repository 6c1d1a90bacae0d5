from __future__ import annotations

import pytest

from lightsms import errors
from lightsms.codes import CLOCK_CODES, CODES, FUNDS_CODES, LOGIN_CODES, REQUEST_CODES, Outcome, lookup, parse_code


def test_table_covers_every_published_code() -> None:
    assert sorted(CODES) == list(range(40))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), (0, 0), ("19", 19), (19, 19), (" 6 ", 6), ("000", 0), ("x", None), ("", None), (None, None),
     (True, None), (6.0, None)],
)  # fmt: skip
def test_parse_code_takes_strings_and_ints(raw: object, expected: int | None) -> None:
    assert parse_code(raw) == expected


def test_unknown_code_is_ambiguous() -> None:
    assert lookup(999).outcome is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (6, errors.ClockRejectedError),
        (24, errors.ClockRejectedError),
        (7, errors.InvalidLoginError),
        (32, errors.InsufficientFundsError),
        (35, errors.InsufficientFundsError),
        (13, errors.SuppressionError),
        (34, errors.SuppressionError),
        (8, errors.PermanentError),
        (16, errors.PermanentError),
        (12, errors.AmbiguousError),
        (0, errors.AmbiguousError),  # a bare top-level 0 proves nothing
        (999, errors.AmbiguousError),
    ],
)
def test_error_for_code_picks_the_class_retry_filters_read(code: int, cls: type[errors.LightSmsError]) -> None:
    error = errors.error_for_code(code, context="send.php")
    assert type(error) is cls
    assert error.code == code
    assert str(error).startswith(f"[{code}] send.php: ")


def test_clock_codes_are_request_codes_and_not_sent() -> None:
    assert CLOCK_CODES <= REQUEST_CODES
    assert all(issubclass(type(errors.error_for_code(c)), errors.NotSentError) for c in CLOCK_CODES)


def test_account_code_sets_are_account_codes_with_their_own_classes() -> None:
    assert all(lookup(c).outcome is Outcome.ACCOUNT for c in LOGIN_CODES | FUNDS_CODES)
    assert all(type(errors.error_for_code(c)) is errors.InvalidLoginError for c in LOGIN_CODES)
    assert all(type(errors.error_for_code(c)) is errors.InsufficientFundsError for c in FUNDS_CODES)
