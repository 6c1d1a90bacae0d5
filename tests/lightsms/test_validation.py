"""Input rules: one test per rule, each naming the field; through the client, no HTTP request at all."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from lightsms.client import LightSmsClient
from lightsms.errors import InvalidInput
from lightsms.text import UCS2
from lightsms.validation import (
    format_incoming_window,
    validate_phones,
    validate_sender,
    validate_sending_time,
    validate_sms_ids,
    validate_text,
)

from .conftest import PHONE_A, PHONE_B, SENDER, ClientFactory, Sim

# --- the rules, as pure functions ---------------------------------------------------------------


@pytest.mark.parametrize("sender", ["LightSMS", "Abc", "A1-b 2", "Abcdefghijk", "1", "123456789012345"])
def test_valid_senders(sender: str) -> None:
    assert validate_sender(sender) == sender


@pytest.mark.parametrize(
    ("sender", "why"),
    [("", "required"), ("Ab", "3-11"), ("Abcdefghijkl", "3-11"), ("1abc", "starting with a letter"),
     ("-abc", "starting with a letter"), ("Shop!", "A-Z"), ("Šiauliai", "A-Z"), ("1234567890123456", "15 digits"),
     (None, "required")],
)  # fmt: skip
def test_invalid_senders(sender: Any, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        validate_sender(sender)
    assert caught.value.field == "sender"


def test_text_parts_are_returned() -> None:
    parts = validate_text("ж" * 71, max_parts=2)
    assert (parts.encoding, parts.parts) == (UCS2, 2)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_empty_text_is_refused(text: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_text(text, max_parts=10)
    assert caught.value.field == "text"


def test_too_many_parts_is_refused_with_the_count() -> None:
    with pytest.raises(InvalidInput, match="3 parts, max 2") as caught:
        validate_text("a" * 307, max_parts=2)
    assert caught.value.field == "text"


def test_phones_are_normalized_in_order() -> None:
    assert validate_phones(["+370 623 45678", "0037061234567"], batch_limit=50) == [PHONE_B, PHONE_A]
    assert validate_phones(PHONE_A, batch_limit=50) == [PHONE_A]
    assert validate_phones(["861234567"], batch_limit=50, default_region="LT") == [PHONE_A]


def test_empty_phone_list_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_phones([], batch_limit=50)
    assert caught.value.field == "phones"


def test_more_phones_than_the_batch_limit_is_refused() -> None:
    with pytest.raises(InvalidInput, match="3 phone numbers, max 2") as caught:
        validate_phones([PHONE_A, PHONE_B, "37063456789"], batch_limit=2)
    assert caught.value.field == "phones"


def test_duplicates_after_normalisation_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"phones\[0\] and phones\[2\]") as caught:
        validate_phones([PHONE_A, PHONE_B, "+370 612 34567"], batch_limit=50)
    assert caught.value.field == "phones[2]"  # the second of the two, as the producers name it
    assert PHONE_A not in str(caught.value)  # masked


def test_each_invalid_phone_is_named_by_index() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_phones([PHONE_A, "12345"], batch_limit=50)
    assert caught.value.field == "phones[1]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (datetime(2024, 5, 30, 14, 6, 59), "2024-05-30 14:06"), ("2024-05-30 14:06", "2024-05-30 14:06")],
)
def test_sending_time(value: Any, expected: str | None) -> None:
    assert validate_sending_time(value) == expected


@pytest.mark.parametrize(
    "value",
    ["2024-05-30", "2024-05-30 14:06:00", "2024-13-30 14:06", "30.05.2024 14:06", 1717077960,
     date(2024, 5, 30), datetime(2024, 5, 30, 14, 6, tzinfo=UTC)],
)  # fmt: skip
def test_bad_sending_time(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_sending_time(value)
    assert caught.value.field == "sending_time"


def test_sms_ids() -> None:
    assert validate_sms_ids(["4092112510348380960001", 17, "17"]) == ["4092112510348380960001", "17"]
    with pytest.raises(InvalidInput) as empty:
        validate_sms_ids([])
    assert empty.value.field == "ids"
    with pytest.raises(InvalidInput) as bad:
        validate_sms_ids(["1", "abc"])
    assert bad.value.field == "ids[1]"


def test_incoming_windows() -> None:
    assert format_incoming_window("2025-01-15", None, None) == {"date": "2025-01-15"}
    assert format_incoming_window(datetime(2025, 1, 15, 9), None, None) == {"date": "2025-01-15"}
    assert format_incoming_window(None, date(2025, 1, 15), date(2025, 1, 15)) == {
        "from": "2025-01-15 00:00:00",
        "to": "2025-01-15 23:59:59",
    }
    assert format_incoming_window(None, "2025-01-15 10:00", datetime(2025, 1, 15, 11, 30, 5)) == {
        "from": "2025-01-15 10:00:00",
        "to": "2025-01-15 11:30:05",
    }


@pytest.mark.parametrize(
    ("window", "field"),
    [((None, None, None), "date"), (("2025-01-15", "2025-01-15", None), "date"), (("15/01/2025", None, None), "date"),
     ((None, "2025-01-15", None), "end"), ((None, None, "2025-01-15"), "start"),
     ((None, "2025-01-16", "2025-01-15"), "end"), ((None, "yesterday", "2025-01-15"), "start")],
)  # fmt: skip
def test_bad_incoming_windows(window: tuple[Any, Any, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        format_incoming_window(*window)
    assert caught.value.field == field


# --- through the client: refused before any HTTP request ---------------------------------------

BAD_CALLS = [
    ("phones", lambda c: c.send([], "Hi", sender=SENDER)),
    ("phones[1]", lambda c: c.send([PHONE_A] * 2, "Hi", sender=SENDER)),
    ("phones", lambda c: c.send([f"3706{n:07d}" for n in range(1000000, 1000004)], "Hi", sender=SENDER)),
    ("phones[1]", lambda c: c.send([PHONE_A, "not a phone"], "Hi", sender=SENDER)),
    ("text", lambda c: c.send([PHONE_A], "  ", sender=SENDER)),
    ("text", lambda c: c.send([PHONE_A], "a" * 2000, sender=SENDER)),
    ("sender", lambda c: c.send([PHONE_A], "Hi", sender="Bad sender!")),
    ("sending_time", lambda c: c.send([PHONE_A], "Hi", sender=SENDER, sending_time="tomorrow")),
    ("ids", lambda c: c.status([])),
    ("ids[0]", lambda c: c.status(["12a"])),
    ("date", lambda c: c.incoming()),
    ("phone", lambda c: c.blacklist_find("123")),
    ("phone", lambda c: c.blacklist_add("")),
]


@pytest.mark.parametrize(("field", "call"), BAD_CALLS)
def test_bad_input_never_reaches_the_server(make_client: ClientFactory, sim: Sim, field: str, call: Any) -> None:
    client = make_client(batch_limit=3, max_parts=2)
    with pytest.raises(InvalidInput) as caught:
        call(client)
    assert caught.value.field == field
    assert sim.requests() == []  # not even timestamp.php


@pytest.mark.parametrize(
    ("options", "field"),
    [({"login": ""}, "login"), ({"api_key": ""}, "api_key"), ({"response_format": "yaml"}, "response_format"),
     ({"default_region": "XX"}, "default_region")],
)  # fmt: skip
def test_bad_client_options(make_client: ClientFactory, options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_client(**options)
    assert caught.value.field == field


def test_default_region_applies_to_every_phone_argument(make_client: ClientFactory, sim: Sim) -> None:
    client: LightSmsClient = make_client(default_region="LT")
    (result,) = client.send(["8 612 34567"], "Hi", sender=SENDER)
    assert result.phone == PHONE_A and result.accepted
    assert client.blacklist_find("861234567") is None


def test_phones_the_caller_vouches_for_skip_phonenumbers_but_not_the_other_checks(monkeypatch) -> None:
    from lightsms import validation

    calls: list[object] = []
    real = validation.normalize_phone

    def counted(raw: object, **kwargs: Any) -> str:
        calls.append(raw)
        return real(raw, **kwargs)

    monkeypatch.setattr(validation, "normalize_phone", counted)
    assert validate_phones(["37061234567", "37062345678"], checked=True) == ["37061234567", "37062345678"]
    assert calls == []
    # what is not digits only is still normalized, vouched for or not
    assert validate_phones(["+370 612 34567"], checked=True) == ["37061234567"] and calls == ["+370 612 34567"]
    with pytest.raises(InvalidInput, match="same number"):
        validate_phones(["37061234567", "37061234567"], checked=True)
    with pytest.raises(InvalidInput, match="max 1 per request"):
        validate_phones(["37061234567", "37062345678"], checked=True, batch_limit=1)
