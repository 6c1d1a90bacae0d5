"""send.php: request-level validation, per-phone results, parts and cost, scheduling, XML."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient

PHONE, PHONE2, PHONE3 = "37061234567", "37062345678", "37063456789"


def test_accepted_single_phone(api: HandClient, admin: Admin) -> None:
    reply = api.send(PHONE, "Hello!")
    assert list(reply) == [PHONE]
    result = reply[PHONE]
    assert result["error"] == "0"
    assert re.fullmatch(r"[0-9]{22}", result["id_sms"])
    assert result["cost"] == "0.0144"
    assert result["count_sms"] == "1"
    [message] = admin.messages()
    assert message["id_sms"] == result["id_sms"]
    assert (message["phone"], message["text"], message["sender"]) == (PHONE, "Hello!", "LightSMS")
    assert message["status"] == "sent"
    assert message["sendingTime"] is None


def test_send_as_xml(api: HandClient) -> None:
    response = api.call("send", "xml", phone=f"{PHONE},12", text="Hi", sender="LightSMS")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "response"
    phones = root.findall("./phones/phone")
    assert [p.get("phone") for p in phones] == [PHONE, "12"]
    ok, bad = phones
    assert ok.get("error") == "0" and len(ok.get("id_sms", "")) == 22
    assert (ok.get("cost"), ok.get("count_sms")) == ("0.0144", "1")
    assert bad.attrib == {"phone": "12", "error": "16"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"phone": PHONE, "sender": "LightSMS"}, "3"),
        ({"phone": PHONE, "text": "", "sender": "LightSMS"}, "3"),
        ({"text": "Hi", "sender": "LightSMS"}, "4"),
        ({"phone": ",", "text": "Hi", "sender": "LightSMS"}, "4"),
        ({"phone": PHONE, "text": "Hi"}, "5"),
        ({"phone": PHONE, "text": "Hi", "sender": "x!"}, "8"),
        ({"phone": PHONE, "text": "Hi", "sender": "1abc"}, "8"),
        ({"phone": PHONE, "text": "Hi", "sender": "ThisIsTooLong"}, "8"),
        ({"phone": PHONE, "text": "Hi", "sender": "Unknown"}, "9"),
        ({"phone": PHONE, "text": "Hi", "sender": "Pending"}, "10"),
    ],
)
def test_request_level_errors(api: HandClient, admin: Admin, params: dict[str, str], code: str) -> None:
    assert api.json("send", **params) == {"error": code}
    assert admin.messages() == []
    [record] = admin.requests("send")
    assert record["outcome"] == f"error:{code}"


def test_numeric_sender_is_well_formed(api: HandClient, admin: Admin) -> None:
    admin.faults(senders={"37060000000": "completed"})
    assert api.send(PHONE, sender="37060000000")[PHONE]["error"] == "0"


def test_forbidden_word_is_11(api: HandClient, admin: Admin) -> None:
    admin.faults(forbidden_words=["casino"])
    assert api.send(PHONE, "Visit our CASINO today") == {"error": "11"}
    assert api.send(PHONE, "Visit our shop")[PHONE]["error"] == "0"


def test_more_than_batch_limit_is_14(api: HandClient, admin: Admin) -> None:
    phones = [f"3706{n:07d}" for n in range(1_000_000, 1_000_051)]
    assert api.send(",".join(phones)) == {"error": "14"}
    reply = api.send(",".join(phones[:50]))
    assert len(reply) == 50 and all(r["error"] == "0" for r in reply.values())
    admin.faults(batch_limit=2)
    assert api.send(",".join(phones[:3])) == {"error": "14"}


def test_mixed_results_across_phones(api: HandClient, admin: Admin) -> None:
    admin.faults(phone_errors={PHONE3: 31})
    assert api.json("add2stop", phone=PHONE2)["id"].isdigit()
    reply = api.send(f"{PHONE},{PHONE2},{PHONE3},123456")
    assert reply[PHONE]["error"] == "0"
    assert reply[PHONE2] == {"error": "13"}
    assert reply[PHONE3] == {"error": "31"}
    assert reply["123456"] == {"error": "16"}
    assert [m["phone"] for m in admin.messages()] == [PHONE]
    [record] = admin.requests("send")
    assert (record["outcome"], record["phones"]) == ("partial", 4)


@pytest.mark.parametrize("phone", ["123", "+37061234567", "3706123456x", "1234567890123456", "37060000000000"])
def test_invalid_phones_are_16(api: HandClient, admin: Admin, phone: str) -> None:
    assert api.send(phone) == {phone: {"error": "16"}}
    assert admin.requests("send")[-1]["outcome"] == "error:16"


def test_duplicate_phones_are_sent_once(api: HandClient, admin: Admin) -> None:
    reply = api.send(f"{PHONE},{PHONE}")
    assert list(reply) == [PHONE]
    assert len(admin.messages()) == 1


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("€" * 80, 1),  # extension characters count double: 160 septets
        ("Привет, мир", 1),
        ("П" * 70, 1),
        ("П" * 71, 2),
        ("П" * 135, 3),
        ("🙂" * 35, 1),  # surrogate pairs: 70 UTF-16 units
        ("🙂" * 36, 2),
    ],
)
def test_parts_and_cost_follow_sms_text_rules(api: HandClient, text: str, parts: int) -> None:
    result = api.send(PHONE, text)[PHONE]
    assert result["error"] == "0"
    assert result["count_sms"] == str(parts)
    assert result["cost"] == f"{0.0144 * parts:.4f}"


def test_text_arrives_intact(api: HandClient, admin: Admin) -> None:
    text = "Ąžuolas & Привет 🙂 +%=?#\nline two"
    api.send(PHONE, text)
    assert admin.messages()[0]["text"] == text


def test_cost_comes_off_the_balance_and_32_when_short(api: HandClient, admin: Admin) -> None:
    admin.faults(balance=0.03, price=0.01)
    reply = api.send(f"{PHONE},{PHONE2},{PHONE3},37064567890", "П" * 71)  # 2 parts = 0.02 each
    assert reply[PHONE] == {**reply[PHONE], "error": "0", "cost": "0.0200", "count_sms": "2"}
    assert [reply[p]["error"] for p in (PHONE2, PHONE3, "37064567890")] == ["32", "32", "32"]
    assert api.json("balance") == {"money": "0.0100", "currency": "EUR"}
    assert api.send(PHONE, "short")[PHONE]["error"] == "0"
    assert api.json("balance")["money"] == "0.0000"
    assert api.send(PHONE) == {PHONE: {"error": "32"}}


def test_scheduled_send_is_pending_until_its_time(api: HandClient, admin: Admin) -> None:
    later = datetime.now(ZoneInfo("Europe/Vilnius")) + timedelta(hours=2)
    sending_time = later.strftime("%Y-%m-%d %H:%M")
    result = api.send(PHONE, sendingTime=sending_time)[PHONE]
    assert result["error"] == "0"
    [message] = admin.messages()
    assert message["sendingTime"] == sending_time
    assert message["status"] == "pending"
    assert api.json("status", state=result["id_sms"]) == {result["id_sms"]: "pending"}


def test_past_sending_time_in_seconds_format_sends_now(api: HandClient, admin: Admin) -> None:
    earlier = datetime.now(ZoneInfo("Europe/Vilnius")) - timedelta(minutes=5)
    result = api.send(PHONE, sendingTime=earlier.strftime("%Y-%m-%d %H:%M:%S"))[PHONE]
    assert api.json("status", state=result["id_sms"]) == {result["id_sms"]: "sent"}


def test_ids_are_unique_across_sends(api: HandClient) -> None:
    phones = [f"3706{n:07d}" for n in range(2_000_000, 2_000_050)]
    ids = [r["id_sms"] for r in api.send(",".join(phones)).values()]
    ids += [r["id_sms"] for r in api.send(",".join(phones)).values()]
    assert len(set(ids)) == 100
