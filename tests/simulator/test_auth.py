"""Authentication checks, in the contract's order, over real HTTP with hand-signed requests."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

import pytest

from tests.simulator.hand_client import HandClient, signed_query


def test_timestamp_is_plain_integer_near_now_without_auth(api: HandClient) -> None:
    response = api.session.get(api.base_url + "timestamp.php", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.strip().isdigit()
    assert abs(int(response.text) - time.time()) <= 2


def test_signature_follows_the_docs_python_example(api: HandClient) -> None:
    # Spelled out once more, line by line as in the seed document, for an unmistakable reference.
    params = {
        "login": "demo",
        "phone": "37061234567",
        "text": "Hello from LightSMS!",
        "sender": "LightSMS",
        "timestamp": api.timestamp(),
        "return": "json",
    }
    sorted_params = sorted(params.items())
    param_string = "".join([str(value) for key, value in sorted_params])
    params["signature"] = hashlib.md5((param_string + "demo-key").encode()).hexdigest()
    response = api.session.get(f"{api.base_url}send.php?{urlencode(params)}", timeout=5)
    reply = response.json()
    assert reply["37061234567"]["error"] == "0"


def test_unsigned_extra_param_breaks_the_signature(api: HandClient) -> None:
    query = signed_query(api.params(), "demo-key") + "&extra=1"
    assert api.raw("balance", query).json() == {"error": "6"}


def test_return_is_part_of_the_signature(api: HandClient) -> None:
    params = api.params()
    query = signed_query(params, "demo-key").replace("return=json", "return=xml")
    assert "<error>6</error>" in api.raw("balance", query).text


@pytest.mark.parametrize(
    ("drop", "code"),
    [("signature", "1"), ("login", "2"), ("timestamp", "24")],
)
def test_missing_auth_params(api: HandClient, drop: str, code: str) -> None:
    params = api.params()
    query = signed_query(params, "demo-key")
    kept = "&".join(part for part in query.split("&") if not part.startswith(drop + "="))
    assert api.raw("balance", kept).json() == {"error": code}


def test_empty_signature_counts_as_missing(api: HandClient) -> None:
    query = urlencode({**api.params(), "signature": ""})
    assert api.raw("balance", query).json() == {"error": "1"}


def test_signature_checked_before_login(api: HandClient) -> None:
    query = urlencode({"timestamp": str(int(time.time())), "return": "json"})
    assert api.raw("balance", query).json() == {"error": "1"}


def test_unknown_login_is_7_even_with_a_stale_timestamp(api: HandClient) -> None:
    response = api.call("balance", login="nobody", timestamp=str(int(time.time()) - 3600))
    assert response.json() == {"error": "7"}


@pytest.mark.parametrize("offset", [-60, -11, 11, 60])
def test_stale_timestamp_is_6(api: HandClient, offset: int) -> None:
    response = api.call("balance", timestamp=str(int(time.time()) + offset))
    assert response.json() == {"error": "6"}


@pytest.mark.parametrize("offset", [-8, 0, 8])
def test_timestamp_within_ten_seconds_passes(api: HandClient, offset: int) -> None:
    reply = api.json("balance", timestamp=str(int(time.time()) + offset))
    assert reply["currency"] == "EUR"


def test_non_numeric_timestamp_is_6(api: HandClient) -> None:
    assert api.call("balance", timestamp="soon").json() == {"error": "6"}


def test_wrong_api_key_is_6(api: HandClient) -> None:
    assert api.call("balance", api_key="not-the-key").json() == {"error": "6"}


def test_uppercase_signature_is_rejected(api: HandClient) -> None:
    query = signed_query(api.params(), "demo-key")
    head, _, signature = query.rpartition("signature=")
    assert api.raw("balance", head + "signature=" + signature.upper()).json() == {"error": "6"}


def test_auth_errors_as_xml(api: HandClient) -> None:
    response = api.call("balance", "xml", api_key="wrong")
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="utf-8"?>\n<response><error>6</error></response>'
