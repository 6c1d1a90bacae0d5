"""send.php replies: every documented shape, JSON and XML, as literal bodies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lightsms import errors
from lightsms.codes import Outcome
from lightsms.parsing import parse_send

A, B, C = "37061234567", "37062345678", "37063456789"

ACCEPTED_JSON = """{
"37061234567": {"error": "0", "id_sms": "4092112510348380960001", "cost": "0.0144", "count_sms": "1"},
"37062345678": {"error": "0", "id_sms": "4092112510348380960002", "cost": "0.0288", "count_sms": "2"}
}"""
ACCEPTED_XML = """<?xml version="1.0" encoding="utf-8"?>
<response>
<phones>
<phone phone="37061234567" error="0" id_sms="4092112510348380960001" cost="0.0144" count_sms="1" />
<phone phone="37062345678" error="0" id_sms="4092112510348380960002" cost="0.0288" count_sms="2" />
</phones>
</response>"""


@pytest.mark.parametrize(("body", "fmt"), [(ACCEPTED_JSON, "json"), (ACCEPTED_XML, "xml")])
def test_accepted_phones_keep_id_cost_parts(body: str, fmt: str) -> None:
    first, second = parse_send(body, fmt, [A, B])
    assert first.phone == A and first.code == 0 and first.outcome is Outcome.OK and first.accepted
    assert first.id_sms == "4092112510348380960001"  # 22 digits, kept exactly, as a string
    assert first.cost == Decimal("0.0144") and first.parts == 1
    assert (second.id_sms, second.cost, second.parts) == ("4092112510348380960002", Decimal("0.0288"), 2)


def test_int_codes_and_a_numeric_id_sms_are_accepted() -> None:
    body = '{"37061234567": {"error": 0, "id_sms": 4092112510348380960001, "cost": 0.0144, "count_sms": 1}}'
    (result,) = parse_send(body, "json", [A])
    assert (result.code, result.id_sms, result.parts) == (0, "4092112510348380960001", 1)
    assert result.cost == Decimal("0.0144")


def test_results_follow_request_order_not_reply_order() -> None:
    body = '{"37062345678": {"error": "16"}, "37061234567": {"error": "0", "id_sms": "1"}}'
    assert [r.phone for r in parse_send(body, "json", [A, B])] == [A, B]


MIXED_JSON = """{"37061234567": {"error": "0", "id_sms": "4092112510348380960001", "cost": "0.0144", "count_sms": "1"},
"37062345678": {"error": "13"}, "37063456789": {"error": "16"}}"""
MIXED_XML = """<response><phones>
<phone phone="37061234567" error="0" id_sms="4092112510348380960001" cost="0.0144" count_sms="1"/>
<phone phone="37062345678" error="13"/><phone phone="37063456789" error="16"/></phones></response>"""


@pytest.mark.parametrize(("body", "fmt"), [(MIXED_JSON, "json"), (MIXED_XML, "xml")])
def test_mixed_results_are_independent(body: str, fmt: str) -> None:
    ok, stopped, invalid = parse_send(body, fmt, [A, B, C])
    assert ok.outcome is Outcome.OK
    assert (stopped.code, stopped.outcome, stopped.id_sms) == (13, Outcome.SUPPRESSION, None)
    assert (invalid.code, invalid.outcome) == (16, Outcome.PERMANENT)


def test_insufficient_funds_per_phone_is_an_account_outcome() -> None:
    body = '{"37061234567": {"error": "0", "id_sms": "1"}, "37062345678": {"error": "32"}}'
    _, broke = parse_send(body, "json", [A, B])
    assert (broke.code, broke.outcome) == (32, Outcome.ACCOUNT)


def test_phone_missing_from_the_reply_is_ambiguous() -> None:
    body = '{"37061234567": {"error": "0", "id_sms": "1"}}'
    _, missing = parse_send(body, "json", [A, B])
    assert (missing.code, missing.outcome) == (None, Outcome.AMBIGUOUS)


def test_empty_object_leaves_every_phone_ambiguous() -> None:
    assert [r.outcome for r in parse_send("{}", "json", [A, B])] == [Outcome.AMBIGUOUS] * 2
    assert [r.outcome for r in parse_send("[]", "json", [A])] == [Outcome.AMBIGUOUS]


def test_reply_keys_with_plus_are_matched() -> None:
    (result,) = parse_send('{"+37061234567": {"error": "0", "id_sms": "7"}}', "json", [A])
    assert result.id_sms == "7"


def test_record_without_error_but_with_id_is_accepted() -> None:
    (result,) = parse_send('{"37061234567": {"id_sms": "7", "cost": "0.01"}}', "json", [A])
    assert (result.code, result.outcome, result.id_sms) == (0, Outcome.OK, "7")


def test_unreadable_record_is_ambiguous() -> None:
    (result,) = parse_send('{"37061234567": {"error": "oops"}}', "json", [A])
    assert (result.code, result.outcome) == (None, Outcome.AMBIGUOUS)


REQUEST_ERRORS = [
    ('{"error": "7"}', "json"),
    ('{"error": 7}', "json"),
    ('{"": {"error": "7"}}', "json"),
    ('{"37061234567": {"error": "7"}, "37062345678": {"error": "7"}}', "json"),
    ("<response><error>7</error></response>", "xml"),
    ('<response error="7"/>', "xml"),
    ('<response><phones><phone phone="" error="7"/></phones></response>', "xml"),
    ('<response><phones><phone phone="37061234567" error="7"/><phone phone="37062345678" error="7"/>'
     "</phones></response>", "xml"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "fmt"), REQUEST_ERRORS)
def test_request_level_error_in_every_placement_raises(body: str, fmt: str) -> None:
    with pytest.raises(errors.InvalidLoginError) as caught:
        parse_send(body, fmt, [A, B])
    assert caught.value.code == 7


@pytest.mark.parametrize(
    ("code", "cls"),
    [(6, errors.ClockRejectedError), (24, errors.ClockRejectedError), (8, errors.PermanentError),
     (11, errors.PermanentError), (14, errors.PermanentError), (32, errors.InsufficientFundsError)],
)  # fmt: skip
def test_top_level_codes_map_to_their_class(code: int, cls: type[errors.LightSmsError]) -> None:
    with pytest.raises(cls):
        parse_send(f'{{"error": "{code}"}}', "json", [A])


def test_same_request_code_under_every_phone_raises_but_a_per_phone_code_does_not() -> None:
    with pytest.raises(errors.ClockRejectedError):
        parse_send('{"37061234567": {"error": "6"}, "37062345678": {"error": 6}}', "json", [A, B])
    # 16 is a per-phone code: every phone invalid is still one result per phone.
    results = parse_send('{"37061234567": {"error": "16"}, "37062345678": {"error": "16"}}', "json", [A, B])
    assert [r.code for r in results] == [16, 16]
    # a request code under only some phones is that phone's own result
    mixed = parse_send('{"37061234567": {"error": "6"}, "37062345678": {"error": "0", "id_sms": "9"}}', "json", [A, B])
    assert [r.code for r in mixed] == [6, 0]


@pytest.mark.parametrize("code", [18, 6, 3, 1])
def test_a_top_level_error_beside_a_phone_lightsms_accepted_leaves_each_phone_its_own_result(code: int) -> None:
    # raising the request's error would send the accepted phone again (18, 6) or fail it though sent
    body = f'{{"error": "{code}", "37061234567": {{"id_sms": "123"}}, "37062345678": {{"error": "7"}}}}'
    accepted, refused = parse_send(body, "json", [A, B])
    assert (accepted.code, accepted.id_sms, accepted.outcome) == (0, "123", Outcome.OK)
    assert refused.code == 7


@pytest.mark.parametrize(
    "record",
    ['{"error": "7"}', '{"error": "0"}', '"0"', "0", '{"error": "7", "id_sms": "123"}', '{"id_sms": "not an id!"}'],
)
def test_a_top_level_error_beside_phones_none_of_them_accepted_with_an_id_is_the_request_s(record: str) -> None:
    with pytest.raises(errors.ClockRejectedError):
        parse_send(f'{{"error": "6", "37061234567": {record}}}', "json", [A])


def test_top_level_zero_alone_proves_nothing() -> None:
    with pytest.raises(errors.AmbiguousError):
        parse_send('{"error": "0"}', "json", [A])


def test_top_level_zero_beside_phone_results_is_ignored() -> None:
    (result,) = parse_send('{"error": "0", "37061234567": {"error": "0", "id_sms": "5"}}', "json", [A])
    assert result.id_sms == "5"


@pytest.mark.parametrize(
    ("body", "fmt"),
    [("", "json"), ("   \n", "json"), ("<html>502 Bad Gateway", "json"), ("{not json", "json"),
     ("<response><phones>", "xml"), ("OK", "json"), ('"19"', "json"), ('{"error": "bad login"}', "json")],
)  # fmt: skip
def test_unreadable_send_reply_is_ambiguous(body: str, fmt: str) -> None:
    with pytest.raises(errors.AmbiguousError):
        parse_send(body, fmt, [A])


def test_format_is_sniffed_from_the_body() -> None:
    (from_xml,) = parse_send('<response><phones><phone phone="37061234567" error="0" id_sms="3"/></phones></response>',
                             "json", [A])  # fmt: skip
    (from_json,) = parse_send('{"37061234567": {"error": "0", "id_sms": "4"}}', "xml", [A])
    assert (from_xml.id_sms, from_json.id_sms) == ("3", "4")


def test_xml_with_child_elements_instead_of_attributes() -> None:
    body = """<?xml version="1.0" encoding="utf-8"?><response><phones>
    <phone><phone>37061234567</phone><error>0</error><id_sms>4092112510348380960001</id_sms><cost>0.0144</cost>
    <count_sms>1</count_sms></phone></phones></response>"""
    (result,) = parse_send(body, "xml", [A])
    assert (result.code, result.id_sms, result.parts) == (0, "4092112510348380960001", 1)
