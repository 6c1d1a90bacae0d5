"""sign() against digests assembled by hand from the documented rule (lightsms-api.md 2.3):
values of every parameter but `signature`, sorted by name, concatenated raw, plus the API key,
MD5 of the UTF-8 bytes, lowercase hex. The concatenations below are written out literally."""

from __future__ import annotations

import hashlib

from lightsms.signing import sign

KEY = "demo-key"


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def test_one_phone_with_return_json() -> None:
    params = {
        "login": "demo",
        "phone": "37061234567",
        "text": "Hello!",
        "sender": "LightSMS",
        "timestamp": "1732809600",
        "return": "json",
    }
    # login, phone, return, sender, text, timestamp
    assert sign(params, KEY) == md5("demo" "37061234567" "json" "LightSMS" "Hello!" "1732809600" "demo-key")
    assert sign(params, KEY) == "3bdb782e804642dfaa6ca6809e82b589"


def test_phone_list_is_signed_as_the_comma_joined_string() -> None:
    params = {
        "timestamp": "1732809600",
        "sender": "Shop",
        "phone": "37061234567,37062345678,37063456789",
        "login": "acme",
        "text": "Hello everyone!",
        "return": "xml",
    }
    expected = md5("acme" "37061234567,37062345678,37063456789" "xml" "Shop" "Hello everyone!" "1732809600" "k3y")
    assert sign(params, "k3y") == expected


def test_cyrillic_and_emoji_are_hashed_as_utf8_before_url_encoding() -> None:
    params = {"login": "demo", "phone": "37061234567", "text": "Привет 😀", "sender": "LightSMS",
              "timestamp": "1700000000", "return": "json"}  # fmt: skip
    expected = md5("demo" "37061234567" "json" "LightSMS" "Привет 😀" "1700000000" "demo-key")
    assert sign(params, KEY) == expected
    assert sign(params, KEY) == "d6bca6ce3444507e7749aedce2f657e6"


def test_sending_time_sorts_between_sender_and_text() -> None:
    params = {"login": "demo", "phone": "37061234567", "text": "Reminder", "sender": "LightSMS",
              "sendingTime": "2024-05-30 14:06", "timestamp": "1732809600", "return": "json"}  # fmt: skip
    # login, phone, return, sender, sendingTime, text, timestamp
    expected = md5("demo" "37061234567" "json" "LightSMS" "2024-05-30 14:06" "Reminder" "1732809600" "demo-key")
    assert sign(params, KEY) == expected


def test_signature_parameter_itself_is_left_out() -> None:
    params = {"login": "demo", "timestamp": "1732809600", "return": "json", "signature": "stale"}
    assert sign(params, KEY) == md5("demo" "json" "1732809600" "demo-key")


def test_return_is_part_of_the_signature() -> None:
    base = {"login": "demo", "timestamp": "1732809600"}
    assert sign({**base, "return": "json"}, KEY) != sign({**base, "return": "xml"}, KEY)
    assert sign(base, KEY) == md5("demo" "1732809600" "demo-key")
