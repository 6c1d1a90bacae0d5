"""status, balance, senders, find_on_stop, add2stop and incoming, in JSON and XML."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient

PHONE, PHONE2 = "37061234567", "37062345678"


def xml_root(api: HandClient, endpoint: str, **params: Any) -> ElementTree.Element:
    response = api.call(endpoint, "xml", **params)
    assert response.status_code == 200
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)


def test_status_of_known_ids_and_unknown_ones_omitted(api: HandClient) -> None:
    first = api.send(PHONE)[PHONE]["id_sms"]
    second = api.send(PHONE2)[PHONE2]["id_sms"]
    reply = api.json("status", state=f"{first},9999999999999999999999,{second}")
    assert reply == {first: "sent", second: "sent"}
    root = xml_root(api, "status", state=f"{first},{second}")
    assert [s.attrib for s in root.findall("./statuses/status")] == [
        {"id_sms": first, "status": "sent"},
        {"id_sms": second, "status": "sent"},
    ]


def test_status_without_ids_is_17(api: HandClient) -> None:
    assert api.json("status") == {"error": "17"}
    assert api.json("status", state="") == {"error": "17"}
    assert xml_root(api, "status").findtext("error") == "17"


def test_status_with_no_known_id_is_empty(api: HandClient) -> None:
    assert api.json("status", state="1234567890123456789012") == {}
    assert len(xml_root(api, "status", state="1234567890123456789012")) == 0


def test_balance_json_and_xml(api: HandClient) -> None:
    assert api.json("balance") == {"money": "100.0000", "currency": "EUR"}
    api.send(PHONE)
    assert api.json("balance") == {"money": "99.9856", "currency": "EUR"}
    root = xml_root(api, "balance")
    assert (root.findtext("money"), root.findtext("currency")) == ("99.9856", "EUR")


def test_senders_json_and_xml(api: HandClient, admin: Admin) -> None:
    assert api.json("senders") == {"LightSMS": "completed", "Pending": "pending"}
    admin.faults(senders={"Shop": "completed"})
    assert api.json("senders") == {"Shop": "completed"}
    root = xml_root(api, "senders")
    assert [s.attrib for s in root.findall("./senders/sender")] == [{"name": "Shop", "state": "completed"}]


def test_add2stop_then_find_then_20(api: HandClient) -> None:
    assert api.json("find_on_stop", phone=PHONE) == {}
    added = api.json("add2stop", phone=PHONE)
    assert set(added) == {"id"} and added["id"].isdigit()
    found = api.json("find_on_stop", phone=PHONE)
    assert set(found) == {"time_in", "description"}
    assert len(found["time_in"]) == len("2025-01-15 14:23:45")
    assert api.json("add2stop", phone=PHONE) == {"error": "20"}
    assert api.send(PHONE) == {PHONE: {"error": "13"}}


def test_stop_list_xml(api: HandClient) -> None:
    assert len(xml_root(api, "find_on_stop", phone=PHONE)) == 0
    entry_id = xml_root(api, "add2stop", phone=PHONE).findtext("id")
    assert entry_id and entry_id.isdigit()
    root = xml_root(api, "find_on_stop", phone=PHONE)
    assert root.findtext("time_in") and root.findtext("description")
    assert xml_root(api, "add2stop", phone=PHONE).findtext("error") == "20"


@pytest.mark.parametrize("endpoint", ["find_on_stop", "add2stop"])
def test_stop_list_without_phone_is_4(api: HandClient, endpoint: str) -> None:
    assert api.json(endpoint) == {"error": "4"}


INBOX = [
    {"sender": "37061111111", "text": "STOP", "phone": "5163251632", "prefix": "51632", "date": "2025-01-15 14:23:45"},
    {"sender": "37062222222", "text": "INFO", "phone": "5163251632", "prefix": "51632", "date": "2025-01-15 23:59:59"},
    {"sender": "37063333333", "text": "Ačiū 🙂", "date": "2025-01-16 00:00:00"},
]


@pytest.fixture
def inbox(admin: Admin) -> list[str]:
    ids: list[str] = admin.post("incoming", {"messages": INBOX})["ids"]
    assert len(set(ids)) == 3
    return ids


def test_incoming_by_date(api: HandClient, inbox: list[str]) -> None:
    reply = api.json("incoming", date="2025-01-15")
    assert list(reply) == inbox[:2]
    assert reply[inbox[0]] == INBOX[0]
    assert api.json("incoming", date="2025-01-16") == {
        inbox[2]: {"date": "2025-01-16 00:00:00", "sender": "37063333333", "phone": "", "prefix": "", "text": "Ačiū 🙂"}
    }


def test_incoming_by_range_inclusive(api: HandClient, inbox: list[str]) -> None:
    reply = api.json("incoming", **{"from": "2025-01-15 14:23:45", "to": "2025-01-16 00:00:00"})
    assert list(reply) == inbox
    reply = api.json("incoming", **{"from": "2025-01-15 14:23:46", "to": "2025-01-15 23:59:59"})
    assert list(reply) == inbox[1:2]


def test_date_wins_over_range(api: HandClient, inbox: list[str]) -> None:
    reply = api.json("incoming", date="2025-01-16", **{"from": "2025-01-15 00:00:00", "to": "2025-01-15 23:59:59"})
    assert list(reply) == inbox[2:]


def test_incoming_as_xml(api: HandClient, inbox: list[str]) -> None:
    root = xml_root(api, "incoming", date="2025-01-15")
    records = [sms.attrib for sms in root.findall("sms")]
    assert records == [{"id_sms": i, **m} for i, m in zip(inbox[:2], INBOX[:2], strict=True)]


def test_incoming_empty(api: HandClient, inbox: list[str]) -> None:
    assert api.json("incoming", date="2024-01-01") == {}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "30"),
        ({"date": "15.01.2025"}, "30"),
        ({"to": "2025-01-15 23:59:59"}, "28"),
        ({"from": "2025-01-15 00:00:00"}, "29"),
        ({"from": "yesterday", "to": "2025-01-15 23:59:59"}, "28"),
        ({"from": "2025-01-15 00:00:00", "to": "later"}, "29"),
    ],
)
def test_incoming_date_errors(api: HandClient, params: dict[str, str], code: str) -> None:
    assert api.json("incoming", **params) == {"error": code}


def test_incoming_defaults_to_now_in_account_timezone(api: HandClient, admin: Admin) -> None:
    [sms_id] = admin.post("incoming", {"messages": [{"sender": "37061111111", "text": "hi"}]})["ids"]
    today = datetime.now(ZoneInfo("Europe/Vilnius")).strftime("%Y-%m-%d")
    reply = api.json("incoming", date=today)
    assert list(reply) == [sms_id]
    assert reply[sms_id]["date"].startswith(today)
