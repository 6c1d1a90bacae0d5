"""Every response-shape variant the client must tolerate, in JSON and XML."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
import requests

from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient
from tests.support.polling import wait_until

PHONE, PHONE2 = "37061234567", "37062345678"


def variants(admin: Admin, **chosen: object) -> None:
    assert admin.faults(variants=chosen)["variants"].items() >= chosen.items()


def xml(api: HandClient, endpoint: str, **params: Any) -> ElementTree.Element:
    return ElementTree.fromstring(api.call(endpoint, "xml", **params).content)


def test_int_codes(api: HandClient, admin: Admin) -> None:
    variants(admin, int_codes=True)
    reply = api.send(f"{PHONE},123")
    assert reply[PHONE]["error"] == 0 and reply[PHONE]["count_sms"] == 1
    assert reply[PHONE]["cost"] == pytest.approx(0.0144)
    assert isinstance(reply[PHONE]["id_sms"], str)  # 22 digits stay a string
    assert reply["123"] == {"error": 16}
    assert api.json("status") == {"error": 17}
    assert api.json("balance") == {"money": pytest.approx(99.9856), "currency": "EUR"}
    assert xml(api, "status").findtext("error") == "17"  # XML has no types to change


def test_error_shape_top_is_default(api: HandClient) -> None:
    assert api.json("send", phone=PHONE, text="Hi", sender="Unknown") == {"error": "9"}


def test_error_shape_empty_key(api: HandClient, admin: Admin) -> None:
    variants(admin, error_shape="empty_key")
    assert api.json("send", phone=PHONE, text="Hi", sender="Unknown") == {"": {"error": "9"}}
    assert api.json("balance", timestamp="1") == {"": {"error": "6"}}
    root = xml(api, "send", phone=PHONE, text="Hi", sender="Unknown")
    assert [p.attrib for p in root.findall("./phones/phone")] == [{"phone": "", "error": "9"}]


def test_error_shape_phone(api: HandClient, admin: Admin) -> None:
    variants(admin, error_shape="phone")
    reply = api.json("send", phone=f"{PHONE},{PHONE2}", text="Hi", sender="Unknown")
    assert reply == {PHONE: {"error": "9"}, PHONE2: {"error": "9"}}
    assert api.json("send", phone=PHONE, text="Hi", sender="LightSMS", timestamp="1") == {PHONE: {"error": "6"}}
    assert api.json("balance", timestamp="1") == {"error": "6"}  # no phone param: falls back to top
    root = xml(api, "send", phone=f"{PHONE},{PHONE2}", text="Hi", sender="Unknown")
    assert [p.attrib for p in root.findall("./phones/phone")] == [
        {"phone": PHONE, "error": "9"},
        {"phone": PHONE2, "error": "9"},
    ]


UNKNOWN_ID = "1234567890123456789012"
EMPTY_CASES = [
    ("status", {"state": UNKNOWN_ID}),
    ("incoming", {"date": "2001-01-01"}),
    ("find_on_stop", {"phone": PHONE}),
]


@pytest.mark.parametrize(("endpoint", "params"), EMPTY_CASES)
def test_empty_shape_braces(api: HandClient, endpoint: str, params: dict[str, str]) -> None:
    assert api.json(endpoint, **params) == {}
    root = xml(api, endpoint, **params)
    assert root.tag == "response" and len(root) == 0


@pytest.mark.parametrize(("endpoint", "params"), EMPTY_CASES)
def test_empty_shape_19(api: HandClient, admin: Admin, endpoint: str, params: dict[str, str]) -> None:
    variants(admin, empty_shape="19")
    assert api.json(endpoint, **params) == {"error": "19"}
    assert xml(api, endpoint, **params).findtext("error") == "19"
    variants(admin, int_codes=True)
    assert api.json(endpoint, **params) == {"error": 19}


@pytest.mark.parametrize(("endpoint", "params"), EMPTY_CASES)
def test_empty_shape_empty_body(api: HandClient, admin: Admin, endpoint: str, params: dict[str, Any]) -> None:
    variants(admin, empty_shape="")
    for fmt in ("json", "xml"):
        response = api.call(endpoint, fmt, **params)
        assert (response.status_code, response.content) == (200, b"")
        assert response.headers["Content-Length"] == "0"


def test_status_words_deliver(api: HandClient, admin: Admin) -> None:
    variants(admin, status_words="deliver")
    id_sms = api.send(PHONE)[PHONE]["id_sms"]
    wait_until(lambda: api.json("status", state=id_sms) == {id_sms: "deliver"}, timeout=5, message="deliver")
    variants(admin, status_words="delivered")
    assert api.json("status", state=id_sms) == {id_sms: "delivered"}


def test_blacklist_shapes(api: HandClient, admin: Admin) -> None:
    entry_id = api.json("add2stop", phone=PHONE)["id"]
    flat = api.json("find_on_stop", phone=PHONE)
    assert set(flat) == {"time_in", "description"}

    variants(admin, blacklist_shape="keyed")
    assert api.json("find_on_stop", phone=PHONE) == {entry_id: flat}
    entry = xml(api, "find_on_stop", phone=PHONE).find("entry")
    assert entry is not None and entry.get("id") == entry_id
    assert (entry.findtext("time_in"), entry.findtext("description")) == (flat["time_in"], flat["description"])

    variants(admin, blacklist_shape="placeholder")
    assert api.json("find_on_stop", phone=PHONE) == {"blacklisted": True, "added_at": flat["time_in"]}
    root = xml(api, "find_on_stop", phone=PHONE)
    assert (root.findtext("blacklisted"), root.findtext("added_at")) == ("true", flat["time_in"])


@pytest.mark.parametrize(
    "bad",
    [
        {"error_shape": "nested"},
        {"empty_shape": "null"},
        {"status_words": "done"},
        {"blacklist_shape": "list"},
        {"int_codes": "yes"},
        {"colour": "blue"},
    ],
)
def test_unknown_variant_values_are_400(sim: object, admin: Admin, bad: dict[str, object]) -> None:
    response = requests.post(admin.url + "faults", json={"variants": bad}, timeout=5)
    assert response.status_code == 400
    assert admin.faults()["variants"]["error_shape"] == "top"  # nothing was half-applied
