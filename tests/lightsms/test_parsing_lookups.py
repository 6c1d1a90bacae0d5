"""Lookup replies (status, balance, senders, incoming, blacklist, timestamp), JSON and XML, literal bodies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lightsms import errors
from lightsms.models import BlacklistEntry, DeliveryState, IncomingSms
from lightsms.parsing import (
    delivery_state,
    parse_balance,
    parse_blacklist_add,
    parse_blacklist_find,
    parse_incoming,
    parse_senders,
    parse_status,
    parse_timestamp,
)

ID1, ID2 = "4092112510348380960001", "4092112510348380960002"
NO_DATA = [("{}", "json"), ("[]", "json"), ("", "json"), ("  ", "xml"), ('{"error": "19"}', "json"),
           ('{"error": 19}', "json"), ('{"": {"error": "19"}}', "json"),
           ("<response><error>19</error></response>", "xml"), ("<response/>", "xml"),
           ("<error>19</error>", "xml")]  # fmt: skip


# --- status.php ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [("delivered", DeliveryState.DELIVERED), ("deliver", DeliveryState.DELIVERED),
     ("DELIVERED", DeliveryState.DELIVERED),
     ("not_deliver", DeliveryState.UNDELIVERED), ("expired", DeliveryState.EXPIRED),
     ("partly_deliver", DeliveryState.PARTLY_DELIVERED), ("pending", DeliveryState.PENDING),
     ("sent", DeliveryState.PENDING), ("send", DeliveryState.PENDING), ("", DeliveryState.PENDING),
     ("something_new", DeliveryState.PENDING)],
)  # fmt: skip
def test_delivery_words(word: str, state: str) -> None:
    assert delivery_state(word) == state


STATUS_BODIES = [
    (f'{{"{ID1}": "delivered", "{ID2}": "not_deliver"}}', "json"),
    (f'<response><statuses><status id_sms="{ID1}" status="delivered"/><status id_sms="{ID2}" status="not_deliver"/>'
     "</statuses></response>", "xml"),
    (f'<response><statuses><status id_sms="{ID1}">delivered</status><status id_sms="{ID2}">not_deliver</status>'
     "</statuses></response>", "xml"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "fmt"), STATUS_BODIES)
def test_status_keyed_by_id(body: str, fmt: str) -> None:
    statuses = parse_status(body, fmt, [ID1, ID2])
    assert statuses[ID1].state == DeliveryState.DELIVERED and statuses[ID1].final
    assert statuses[ID2].raw == "not_deliver" and statuses[ID2].state == DeliveryState.UNDELIVERED


def test_status_values_as_records_and_errors() -> None:
    statuses = parse_status(f'{{"{ID1}": {{"status": "deliver"}}, "{ID2}": {{"error": "18"}}}}', "json", [ID1, ID2])
    assert statuses[ID1].state == DeliveryState.DELIVERED
    assert statuses[ID2].state == DeliveryState.PENDING and not statuses[ID2].final


@pytest.mark.parametrize(
    ("body", "fmt"),
    [('{"status": "delivered", "delivered_at": "2025-01-15 14:23:45"}', "json"),
     ("<response><status>delivered</status><delivered_at>2025-01-15 14:23:45</delivered_at></response>", "xml")],
)  # fmt: skip
def test_status_placeholder_shape_for_a_single_id(body: str, fmt: str) -> None:
    statuses = parse_status(body, fmt, [ID1])
    assert list(statuses) == [ID1]
    assert statuses[ID1].state == DeliveryState.DELIVERED


def test_status_placeholder_shape_cannot_be_attributed_to_several_ids() -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_status('{"status": "delivered"}', "json", [ID1, ID2])


@pytest.mark.parametrize(("body", "fmt"), NO_DATA)
def test_status_no_data_is_empty(body: str, fmt: str) -> None:
    assert parse_status(body, fmt, [ID1]) == {}


def test_status_unknown_ids_are_absent() -> None:
    assert list(parse_status(f'{{"{ID1}": "sent"}}', "json", [ID1, ID2])) == [ID1]


def test_status_request_error_raises() -> None:
    with pytest.raises(errors.PermanentError) as caught:
        parse_status('{"error": "17"}', "json", [ID1])
    assert caught.value.code == 17


@pytest.mark.parametrize("body", ["{oops", "<response><statuses>", '"delivered"', "delivered"])
def test_status_unreadable_is_malformed_not_ambiguous(body: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_status(body, "json", [ID1])


# --- balance.php --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fmt"),
    [('{"money": "69573.1", "currency": "EUR"}', "json"), ('{"money": 69573.1, "currency": "EUR"}', "json"),
     ("<response><money>69573.1</money><currency>EUR</currency></response>", "xml"),
     ('<response money="69573.1" currency="EUR"/>', "xml"),
     ('<response><balance money="69573.1" currency="EUR"/></response>', "xml")],
)  # fmt: skip
def test_balance(body: str, fmt: str) -> None:
    balance = parse_balance(body, fmt)
    assert balance.money == Decimal("69573.1") and balance.currency == "EUR"


def test_balance_without_currency() -> None:
    assert parse_balance('{"money": "0.5"}', "json").currency is None


@pytest.mark.parametrize("body", ["{}", "", '{"currency": "EUR"}', '{"money": "lots"}'])
def test_balance_without_money_is_malformed(body: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_balance(body, "json")


def test_balance_request_error_raises_its_class() -> None:
    with pytest.raises(errors.InvalidLoginError):
        parse_balance('{"error": "7"}', "json")


# --- senders.php --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fmt"),
    [('{"LightSMS": "completed", "Pending": "pending"}', "json"),
     ('{"LightSMS": {"state": "completed"}, "Pending": {"status": "pending"}}', "json"),
     ('[{"sender": "LightSMS", "state": "completed"}, {"name": "Pending", "status": "pending"}]', "json"),
     ('<response><senders><sender name="LightSMS" state="completed"/><sender name="Pending" state="pending"/>'
      "</senders></response>", "xml"),
     ('<response><senders><sender name="LightSMS">completed</sender><sender name="Pending">pending</sender>'
      "</senders></response>", "xml"),
     ('<response><senders><sender state="completed">LightSMS</sender><sender state="pending">Pending</sender>'
      "</senders></response>", "xml"),
     ("<response><sender><name>LightSMS</name><state>completed</state></sender>"
      "<sender><name>Pending</name><state>pending</state></sender></response>", "xml")],
)  # fmt: skip
def test_senders(body: str, fmt: str) -> None:
    assert parse_senders(body, fmt) == {"LightSMS": "completed", "Pending": "pending"}


@pytest.mark.parametrize(("body", "fmt"), NO_DATA)
def test_senders_no_data_is_empty(body: str, fmt: str) -> None:
    assert parse_senders(body, fmt) == {}


# --- incoming.php -------------------------------------------------------------------------------

INCOMING_JSON = """{"5597": {"date": "2025-01-15 14:23:45", "sender": "37061234567", "phone": "5163251632",
"prefix": "51632", "text": "STOP"}, "5598": {"date": "2025-01-15 15:10:22", "sender": "37062345678",
"text": "Labas, ačiū 😀"}}"""
INCOMING_XML = """<?xml version="1.0" encoding="utf-8"?>
<response>
<sms id_sms="5597" date="2025-01-15 14:23:45" sender="37061234567" phone="5163251632" prefix="51632" text="STOP" />
<sms id_sms="5598" date="2025-01-15 15:10:22" sender="37062345678" text="Labas, ačiū 😀" />
</response>"""
INCOMING_XML_WRAPPED = INCOMING_XML.replace("<response>", "<response><messages>").replace(
    "</response>", "</messages></response>"
)


@pytest.mark.parametrize(
    ("body", "fmt"), [(INCOMING_JSON, "json"), (INCOMING_XML, "xml"), (INCOMING_XML_WRAPPED, "xml")]
)
def test_incoming(body: str, fmt: str) -> None:
    first, second = parse_incoming(body, fmt)
    assert first == IncomingSms("5597", "2025-01-15 14:23:45", "37061234567", "5163251632", "51632", "STOP")
    assert (second.id, second.phone, second.prefix, second.text) == ("5598", None, None, "Labas, ačiū 😀")


def test_incoming_xml_with_child_elements() -> None:
    body = "<response><sms><id_sms>7</id_sms><date>2025-01-15 00:00:01</date><sender>37061234567</sender>" \
           "<text>HELP</text></sms></response>"  # fmt: skip
    (only,) = parse_incoming(body, "xml")
    assert (only.id, only.sender, only.text) == ("7", "37061234567", "HELP")


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        ('{"1": "junk", "2": {"sender": "37061234567", "text": "ok"}, "3": {"date": "", "sender": "x"}}', "json"),
        ('[{"id_sms": "1"}, {"id_sms": "2", "sender": "37061234567", "text": "ok"}, {"id_sms": "3", "date": "", '
         '"sender": "x"}, {"date": "2025-01-15 00:00:01", "sender": "1", "text": "no id"}, "junk"]', "json"),
        ('<response><sms id_sms="1">junk</sms><sms id_sms="2" sender="37061234567" text="ok"/>'
         '<sms id_sms="3" date="" sender="x"/><sms date="2025-01-15 00:00:01" sender="1" text="no id"/></response>',
         "xml"),
    ],
)  # fmt: skip
def test_incoming_malformed_items_come_back_with_a_problem_not_an_exception(body: str, fmt: str) -> None:
    items = {item.id: item for item in parse_incoming(body, fmt)}
    assert items["2"] == IncomingSms("2", None, "37061234567", None, None, "ok")  # missing fields: None
    assert (items["3"].date, items["3"].text, items["3"].problem) == ("", None, None)  # empty "" vs missing None
    if body.startswith("{"):
        assert items["1"] == IncomingSms("1", None, None, None, None, None, problem="not a record")
        return
    assert items["1"] == IncomingSms("1", None, None, None, None, None)  # a record with nothing in it
    # Records without an id are kept, with their fields, for the poller to set aside.
    no_id = [item for item in parse_incoming(body, fmt) if item.id == ""]
    assert no_id[0] == IncomingSms("", "2025-01-15 00:00:01", "1", None, None, "no id", problem="no id")
    assert [item.problem for item in no_id[1:]] == (["not a record"] if fmt == "json" else [])


@pytest.mark.parametrize(("body", "fmt"), NO_DATA)
def test_incoming_no_data_is_empty(body: str, fmt: str) -> None:
    assert parse_incoming(body, fmt) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_incoming_a_well_formed_html_page_is_unreadable_not_no_data(fmt: str) -> None:
    # Read as "no messages", it would let the poller move its cursor past messages it never saw.
    with pytest.raises(errors.MalformedResponseError):
        parse_incoming("<html><body>Service temporarily unavailable</body></html>", fmt)


def test_incoming_missing_date_raises_30() -> None:
    with pytest.raises(errors.PermanentError) as caught:
        parse_incoming('{"error": "30"}', "json")
    assert caught.value.code == 30


# --- find_on_stop.php / add2stop.php ------------------------------------------------------------

PHONE = "37061234567"
LISTED = [
    ('{"time_in": "2025-01-15 14:23:45", "description": "STOP by SMS"}', "json"),
    ('{"1234": {"time_in": "2025-01-15 14:23:45", "description": "STOP by SMS"}}', "json"),
    ("<response><time_in>2025-01-15 14:23:45</time_in><description>STOP by SMS</description></response>", "xml"),
    ('<response time_in="2025-01-15 14:23:45" description="STOP by SMS"/>', "xml"),
    ('<response><entry id="1234"><time_in>2025-01-15 14:23:45</time_in><description>STOP by SMS</description>'
     "</entry></response>", "xml"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "fmt"), LISTED)
def test_blacklist_find_flat_and_keyed(body: str, fmt: str) -> None:
    assert parse_blacklist_find(body, fmt, PHONE) == BlacklistEntry(PHONE, "2025-01-15 14:23:45", "STOP by SMS")


@pytest.mark.parametrize(
    ("body", "fmt"),
    [('{"blacklisted": true, "added_at": "2025-01-15 14:23:45"}', "json"),
     ("<response><blacklisted>true</blacklisted><added_at>2025-01-15 14:23:45</added_at></response>", "xml")],
)  # fmt: skip
def test_blacklist_find_placeholder_shape(body: str, fmt: str) -> None:
    assert parse_blacklist_find(body, fmt, PHONE) == BlacklistEntry(PHONE, "2025-01-15 14:23:45", None)


@pytest.mark.parametrize(
    ("body", "fmt"), [*NO_DATA, ('{"blacklisted": false}', "json"), ('{"blacklisted": "0"}', "json")]
)
def test_blacklist_find_not_listed(body: str, fmt: str) -> None:
    assert parse_blacklist_find(body, fmt, PHONE) is None


@pytest.mark.parametrize(
    ("body", "fmt"),
    [('{"id": "1234"}', "json"), ('{"id": 1234}', "json"), ("<response><id>1234</id></response>", "xml")],
)
def test_blacklist_add_returns_the_entry_id(body: str, fmt: str) -> None:
    assert parse_blacklist_add(body, fmt) == "1234"


def test_blacklist_add_already_listed_raises_20() -> None:
    with pytest.raises(errors.PermanentError) as caught:
        parse_blacklist_add('{"error": "20"}', "json")
    assert caught.value.code == 20


def test_blacklist_add_without_id_is_malformed() -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_blacklist_add("{}", "json")


# --- timestamp.php ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["1732809600", "1732809600\n", " 1732809600 ", "\ufeff1732809600"])
def test_timestamp(body: str) -> None:
    assert parse_timestamp(body) == 1732809600


@pytest.mark.parametrize("body", ["", "now", "<html>"])
def test_timestamp_unreadable(body: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_timestamp(body)
