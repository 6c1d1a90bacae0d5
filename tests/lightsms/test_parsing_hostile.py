"""Replies nobody documented: hostile or broken bodies, JSON and XML, for every parser.

Whatever the body, nothing but a LightSmsError leaves a parse_* function. For send.php each phone
stands alone: a phone whose code cannot be read is AMBIGUOUS, and a phone with error 0 is accepted
even when its cost, part count or id cannot be read (those are named in PhoneResult.unreadable).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from xml.sax.saxutils import quoteattr

import pytest

from lightsms import errors
from lightsms.codes import CODES, Outcome, parse_code
from lightsms.models import PhoneResult
from lightsms.parse_json import as_decimal, as_int, digits_of
from lightsms.parsing import (
    parse_balance,
    parse_blacklist_add,
    parse_blacklist_find,
    parse_incoming,
    parse_send,
    parse_senders,
    parse_status,
    parse_timestamp,
)

A, B, C = "37061234567", "37062345678", "37063456789"
PHONES = [A, B, C]
ID_A, ID_B, ID_C = "4092112510348380960001", "4092112510348380960002", "4092112510348380960003"
DEEP = 100_000
TEN_MB = 10 * 1024 * 1024


def ok_record(id_sms: str, **extra: str) -> str:
    """A JSON record body fragment; values in `extra` are raw JSON text."""
    fields = {"error": '"0"', "id_sms": json.dumps(id_sms), "cost": '"0.0144"', "count_sms": '"1"', **extra}
    return "{" + ", ".join(f'"{name}": {raw}' for name, raw in fields.items() if raw is not None) + "}"


def three(a: str | None = None, b: str | None = None, c: str | None = None) -> str:
    """A send.php JSON reply for A, B, C: each phone's raw record text (default: accepted)."""
    records = {A: a or ok_record(ID_A), B: b or ok_record(ID_B), C: c or ok_record(ID_C)}
    return "{" + ", ".join(f'"{phone}": {raw}' for phone, raw in records.items()) + "}"


@dataclass(frozen=True)
class Expect:
    """What each phone must come out as: id_sms for OK phones, the unreadable fields, AMBIGUOUS ones."""

    ok: dict[str, str | None] = field(default_factory=dict)
    ambiguous: tuple[str, ...] = ()
    unreadable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    other: dict[str, Outcome] = field(default_factory=dict)  # phones with a readable non-zero code
    raises: type[errors.LightSmsError] | None = None  # the whole reply refused


ALL_OK = {A: ID_A, B: ID_B, C: ID_C}


def only_b_ambiguous() -> Expect:
    return Expect(ok={A: ID_A, C: ID_C}, ambiguous=(B,))


def b_unreadable(*names: str) -> Expect:
    return Expect(ok=ALL_OK, unreadable={B: names})


WHOLE_REPLY_AMBIGUOUS = Expect(raises=errors.AmbiguousError)

SEND_JSON: list[tuple[str, str, Expect]] = [
    # codes that str.isdigit() accepts and int() refuses, or that are not ASCII digits
    ("superscript code", three(b='{"error": "²"}'), only_b_ambiguous()),
    ("superscript zero", three(b='{"error": "⁰", "id_sms": "9"}'), only_b_ambiguous()),
    ("fullwidth zero", three(b='{"error": "０", "id_sms": "9"}'), only_b_ambiguous()),
    ("arabic-indic code", three(b='{"error": "١٦"}'), only_b_ambiguous()),
    ("devanagari zero", three(b='{"error": "०", "id_sms": "9"}'), only_b_ambiguous()),
    ("5000-digit code string", three(b='{"error": "' + "9" * 5000 + '"}'), only_b_ambiguous()),
    ("5000-digit code number", three(b='{"error": ' + "9" * 5000 + "}"), only_b_ambiguous()),
    ("7-digit code", three(b='{"error": "1000000"}'), only_b_ambiguous()),
    ("code 1e999", three(b='{"error": 1e999}'), only_b_ambiguous()),
    ("code NaN", three(b='{"error": NaN, "id_sms": "9"}'), only_b_ambiguous()),
    ("code Infinity", three(b='{"error": Infinity}'), only_b_ambiguous()),
    ("code string -0", three(b='{"error": "-0", "id_sms": "9"}'), only_b_ambiguous()),
    ("code number -0", three(b='{"error": -0, "id_sms": "9"}'), only_b_ambiguous()),
    ("code float 0.0", three(b='{"error": 0.0, "id_sms": "9"}'), only_b_ambiguous()),
    ("code true", three(b='{"error": true, "id_sms": "9"}'), only_b_ambiguous()),
    ("code false", three(b='{"error": false, "id_sms": "9"}'), only_b_ambiguous()),
    ("code list", three(b='{"error": ["0"], "id_sms": "9"}'), only_b_ambiguous()),
    ("code dict", three(b='{"error": {"code": "0"}, "id_sms": "9"}'), only_b_ambiguous()),
    ("code null", three(b='{"error": null, "id_sms": "9"}'), only_b_ambiguous()),
    ("code with a BOM", three(b='{"error": "\\ufeff0", "id_sms": "9"}'), only_b_ambiguous()),
    ("code with a zero-width space", three(b='{"error": "\\u200b0", "id_sms": "9"}'), only_b_ambiguous()),
    ("code in odd whitespace", three(b='{"error": "\\u00a0\\t0\\u2003\\n", "id_sms": "' + ID_B + '"}'),
     Expect(ok=ALL_OK)),
    # the record itself
    ("record is a list", three(b='[{"error": "0", "id_sms": "9"}]'), only_b_ambiguous()),
    ("record is true", three(b="true"), only_b_ambiguous()),
    ("record is null", three(b="null"), only_b_ambiguous()),
    ("record is a bare 0", three(b='"0"'), Expect(ok={A: ID_A, B: None, C: ID_C})),
    ("record is a bare 16", three(b="16"), Expect(ok={A: ID_A, C: ID_C}, other={B: Outcome.PERMANENT})),
    ("record is a 10 MB string", three(b=json.dumps("0" * TEN_MB)), only_b_ambiguous()),
    # id_sms
    ("id_sms is a dict", three(b='{"error": "0", "id_sms": {"id": "9"}, "cost": "0.01", "count_sms": "1"}'),
     Expect(ok={A: ID_A, B: None, C: ID_C}, unreadable={B: ("id_sms",)})),
    ("id_sms is a dict, no error", three(b='{"id_sms": {"id": "9"}}'), only_b_ambiguous()),
    ("id_sms is a float", three(b='{"error": "0", "id_sms": 4.092112510348381e21}'),
     Expect(ok={A: ID_A, B: None, C: ID_C}, unreadable={B: ("id_sms",)})),
    ("id_sms is 10 MB", three(b='{"error": "0", "id_sms": "' + "4" * TEN_MB + '"}'),
     Expect(ok={A: ID_A, B: None, C: ID_C}, unreadable={B: ("id_sms",)})),
    ("error 0 without id_sms", three(b='{"error": "0"}'), Expect(ok={A: ID_A, B: None, C: ID_C})),
    ("error 0 with an empty id_sms", three(b='{"error": "0", "id_sms": ""}'), Expect(ok={A: ID_A, B: None, C: ID_C})),
    ("numeric id_sms", three(b='{"error": 0, "id_sms": 4092112510348380960002}'), Expect(ok=ALL_OK)),
    # cost
    ("cost 1e400 string", three(b=ok_record(ID_B, cost='"1e400"')), b_unreadable("cost")),
    ("cost 1e400 number", three(b=ok_record(ID_B, cost="1e400")), b_unreadable("cost")),
    ("cost 5000 nines", three(b=ok_record(ID_B, cost='"' + "9" * 5000 + '"')), b_unreadable("cost")),
    ("cost 5000-digit number", three(b=ok_record(ID_B, cost="9" * 5000)), b_unreadable("cost")),
    ("cost a million", three(b=ok_record(ID_B, cost='"1000000"')), b_unreadable("cost")),
    ("cost negative", three(b=ok_record(ID_B, cost='"-0.01"')), b_unreadable("cost")),
    ("cost -0", three(b=ok_record(ID_B, cost='"-0"')), b_unreadable("cost")),
    ("cost NaN string", three(b=ok_record(ID_B, cost='"NaN"')), b_unreadable("cost")),
    ("cost NaN number", three(b=ok_record(ID_B, cost="NaN")), b_unreadable("cost")),
    ("cost Infinity", three(b=ok_record(ID_B, cost="Infinity")), b_unreadable("cost")),
    ("cost sNaN", three(b=ok_record(ID_B, cost='"sNaN"')), b_unreadable("cost")),
    ("cost true", three(b=ok_record(ID_B, cost="true")), b_unreadable("cost")),
    ("cost list", three(b=ok_record(ID_B, cost='["0.01"]')), b_unreadable("cost")),
    ("cost dict", three(b=ok_record(ID_B, cost='{"eur": "0.01"}')), b_unreadable("cost")),
    ("cost arabic-indic", three(b=ok_record(ID_B, cost='"٠٫٠١"')), b_unreadable("cost")),
    ("cost with underscores", three(b=ok_record(ID_B, cost='"1_000"')), b_unreadable("cost")),
    ("cost and count both bad", three(b=ok_record(ID_B, cost='"1e400"', count_sms='"²"')),
     b_unreadable("cost", "count_sms")),
    # count_sms
    ("count superscript", three(b=ok_record(ID_B, count_sms='"²"')), b_unreadable("count_sms")),
    ("count fullwidth", three(b=ok_record(ID_B, count_sms='"１"')), b_unreadable("count_sms")),
    ("count arabic-indic", three(b=ok_record(ID_B, count_sms='"٣"')), b_unreadable("count_sms")),
    ("count 0", three(b=ok_record(ID_B, count_sms='"0"')), b_unreadable("count_sms")),
    ("count 256", three(b=ok_record(ID_B, count_sms='"256"')), b_unreadable("count_sms")),
    ("count 5000 digits", three(b=ok_record(ID_B, count_sms="9" * 5000)), b_unreadable("count_sms")),
    ("count float", three(b=ok_record(ID_B, count_sms="1.0")), b_unreadable("count_sms")),
    ("count true", three(b=ok_record(ID_B, count_sms="true")), b_unreadable("count_sms")),
    ("count -1", three(b=ok_record(ID_B, count_sms='"-1"')), b_unreadable("count_sms")),
    ("count -0", three(b=ok_record(ID_B, count_sms="-0")), b_unreadable("count_sms")),
    ("count 1e999", three(b=ok_record(ID_B, count_sms="1e999")), b_unreadable("count_sms")),
    # keys
    ("keys with + and spaces", '{"+370 612 34567": ' + ok_record(ID_A) + ', " 37062345678 ": ' + ok_record(ID_B)
     + ', "+37063456789": ' + ok_record(ID_C) + "}", Expect(ok=ALL_OK)),
    ("keys that are not phones", '{"37061234567.0": ' + ok_record(ID_A) + ', "null": ' + ok_record(ID_B)
     + ', "-37063456789": ' + ok_record(ID_C) + "}", Expect(ambiguous=(A, B, C))),
    ("a 40-digit key", '{"' + "3" * 40 + '": ' + ok_record(ID_A) + "}", Expect(ambiguous=(A, B, C))),
    ("duplicate key, conflicting", three()[:-1] + f', "{B}": {{"error": "16"}}}}', only_b_ambiguous()),
    ("duplicate key, identical", three()[:-1] + f', "{B}": {ok_record(ID_B)}}}', Expect(ok=ALL_OK)),
    ("same phone as + and bare key, conflicting", three()[:-1] + f', "+{B}": {{"error": "13"}}}}',
     only_b_ambiguous()),
    ("duplicate error inside a record", three(b='{"error": "0", "error": "16", "id_sms": "9"}'),
     only_b_ambiguous()),
    ("a 10 MB extra value", three(b=ok_record(ID_B, note=json.dumps("x" * TEN_MB))), Expect(ok=ALL_OK)),
    ("a deep junk value beside B", three(b=ok_record(ID_B, note="[" * 500 + "]" * 500)), Expect(ok=ALL_OK)),
    # the top level
    ("top-level error 1e999 beside phones", '{"error": 1e999, ' + three()[1:], Expect(ok=ALL_OK)),
    ("top-level error 1e999 alone", '{"error": 1e999}', WHOLE_REPLY_AMBIGUOUS),
    ("top-level error superscript alone", '{"error": "²"}', WHOLE_REPLY_AMBIGUOUS),
    ("empty-key error fullwidth alone", '{"": {"error": "７"}}', WHOLE_REPLY_AMBIGUOUS),
    ("BOM before the body", "\ufeff" + three(), Expect(ok=ALL_OK)),
    ("odd whitespace around the body", "\u3000\r\n\t" + three() + "\x0b\x0c ", Expect(ok=ALL_OK)),
    ("two BOMs", "\ufeff\ufeff" + three(), Expect(ok=ALL_OK)),
    ("deeply nested arrays", "[" * DEEP + "]" * DEEP, WHOLE_REPLY_AMBIGUOUS),
    ("deeply nested objects", '{"a": ' * DEEP + "1" + "}" * DEEP, WHOLE_REPLY_AMBIGUOUS),
    ("deep value under a phone", three(b="[" * DEEP + "]" * DEEP), WHOLE_REPLY_AMBIGUOUS),
    ("a list of records", "[" + ok_record(ID_A) + "]", WHOLE_REPLY_AMBIGUOUS),
    ("a bare number", "9" * 5000, WHOLE_REPLY_AMBIGUOUS),
    ("a bare 1e999", "1e999", WHOLE_REPLY_AMBIGUOUS),
    ("NaN", "NaN", WHOLE_REPLY_AMBIGUOUS),
    ("null", "null", WHOLE_REPLY_AMBIGUOUS),
    ("a lone surrogate key", '{"\ud800": 1}', Expect(ambiguous=(A, B, C))),
    ("a NUL byte", "\x00", WHOLE_REPLY_AMBIGUOUS),
    ("truncated", three()[:-7], WHOLE_REPLY_AMBIGUOUS),
]  # fmt: skip


def xml_phone(phone: str, **attrs: str) -> str:
    return (
        "<phone " + " ".join(f"{name}={quoteattr(value)}" for name, value in {"phone": phone, **attrs}.items()) + "/>"
    )


def xml_ok(phone: str, id_sms: str, **attrs: str) -> str:
    return xml_phone(phone, **{"error": "0", "id_sms": id_sms, "cost": "0.0144", "count_sms": "1", **attrs})


def xml_three(b: str | None = None, *, extra: str = "", root_attrs: str = "") -> str:
    b_element = b if b is not None else xml_ok(B, ID_B)
    return (f'<?xml version="1.0" encoding="utf-8"?><response{root_attrs}><phones>{xml_ok(A, ID_A)}'
            f"{b_element}{xml_ok(C, ID_C)}{extra}</phones></response>")  # fmt: skip


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + ']><response><phones><phone phone="37061234567" error="0" id_sms="&lol9;"/></phones></response>'
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
    '<response><phones><phone phone="37061234567" error="0" id_sms="&ext;"/></phones></response>'
)

SEND_XML: list[tuple[str, str, Expect]] = [
    ("xml superscript code", xml_three(xml_phone(B, error="²")), only_b_ambiguous()),
    ("xml fullwidth zero", xml_three(xml_phone(B, error="０", id_sms="9")), only_b_ambiguous()),
    ("xml arabic-indic code", xml_three(xml_phone(B, error="١٦")), only_b_ambiguous()),
    ("xml 5000-digit code", xml_three(xml_phone(B, error="9" * 5000)), only_b_ambiguous()),
    ("xml code -0", xml_three(xml_phone(B, error="-0", id_sms="9")), only_b_ambiguous()),
    ("xml code NaN", xml_three(xml_phone(B, error="NaN", id_sms="9")), only_b_ambiguous()),
    ("xml cost 1e400", xml_three(xml_ok(B, ID_B, cost="1e400")), b_unreadable("cost")),
    ("xml cost 5000 nines", xml_three(xml_ok(B, ID_B, cost="9" * 5000)), b_unreadable("cost")),
    ("xml cost Infinity", xml_three(xml_ok(B, ID_B, cost="Infinity")), b_unreadable("cost")),
    ("xml cost negative", xml_three(xml_ok(B, ID_B, cost="-1")), b_unreadable("cost")),
    ("xml count superscript", xml_three(xml_ok(B, ID_B, count_sms="²")), b_unreadable("count_sms")),
    ("xml count 300", xml_three(xml_ok(B, ID_B, count_sms="300")), b_unreadable("count_sms")),
    ("xml count fullwidth", xml_three(xml_ok(B, ID_B, count_sms="２")), b_unreadable("count_sms")),
    ("xml error 0 without id_sms", xml_three(xml_phone(B, error="0")), Expect(ok={A: ID_A, B: None, C: ID_C})),
    ("xml id_sms with a comma", xml_three(xml_phone(B, error="0", id_sms="1,2")),
     Expect(ok={A: ID_A, B: None, C: ID_C}, unreadable={B: ("id_sms",)})),
    ("xml phone with + and spaces", xml_three(xml_ok(" +370 623 45678 ", ID_B)), Expect(ok=ALL_OK)),
    ("xml duplicate phone, conflicting", xml_three(extra=xml_phone(B, error="16")), only_b_ambiguous()),
    ("xml duplicate phone, identical", xml_three(extra=xml_ok(B, ID_B)), Expect(ok=ALL_OK)),
    ("xml odd whitespace in attributes", xml_three(xml_phone(B, error=" 0\t", id_sms=f"\n{ID_B} ")), Expect(ok=ALL_OK)),
    ("xml BOM", "\ufeff" + xml_three(), Expect(ok=ALL_OK)),
    ("xml unreadable root error beside phones", xml_three(root_attrs=' error="²"'), Expect(ok=ALL_OK)),
    ("xml unreadable root error alone", '<response error="²"/>', WHOLE_REPLY_AMBIGUOUS),
    ("xml 10 MB attribute", xml_three(xml_ok(B, ID_B, note="x" * TEN_MB)), Expect(ok=ALL_OK)),
    ("xml deeply nested", "<a>" * DEEP + "</a>" * DEEP, Expect(ambiguous=(A, B, C))),
    ("xml deeply nested around phones", "<a>" * DEEP + xml_three().split("?>", 1)[1] + "</a>" * DEEP,
     Expect(ok=ALL_OK)),
    ("xml unknown encoding", '<?xml version="1.0" encoding="bogus"?><response/>', WHOLE_REPLY_AMBIGUOUS),
    ("xml multi-byte encoding", '<?xml version="1.0" encoding="shift_jis"?><response/>', WHOLE_REPLY_AMBIGUOUS),
    ("xml utf-16 declared", '<?xml version="1.0" encoding="utf-16"?><response/>', WHOLE_REPLY_AMBIGUOUS),
    ("xml billion laughs", LAUGHS, WHOLE_REPLY_AMBIGUOUS),
    ("xml external entity", EXTERNAL, WHOLE_REPLY_AMBIGUOUS),
    ("xml truncated", xml_three()[:-20], WHOLE_REPLY_AMBIGUOUS),
    ("xml lone surrogate", "<response>\ud800</response>", WHOLE_REPLY_AMBIGUOUS),
]  # fmt: skip


def check(results: list[PhoneResult], expect: Expect) -> None:
    by_phone = {r.phone: r for r in results}
    assert [r.phone for r in results] == PHONES
    assert {p for p, r in by_phone.items() if r.outcome is Outcome.OK} == set(expect.ok)
    assert {p: by_phone[p].id_sms for p in expect.ok} == expect.ok
    assert {p for p, r in by_phone.items() if r.outcome is Outcome.AMBIGUOUS} == set(expect.ambiguous)
    assert {
        p: r.outcome for p, r in by_phone.items() if p not in expect.ok and p not in expect.ambiguous
    } == expect.other
    assert {p: r.unreadable for p, r in by_phone.items() if r.unreadable} == expect.unreadable
    for result in results:
        if result.outcome is Outcome.AMBIGUOUS:
            assert result.code is None and result.id_sms is None
        if result.cost is not None:
            assert result.cost.is_finite() and Decimal(0) <= result.cost < 1_000_000
        if result.parts is not None:
            assert 1 <= result.parts <= 255
        if "cost" in result.unreadable:
            assert result.cost is None
        if "count_sms" in result.unreadable:
            assert result.parts is None


@pytest.mark.parametrize(("name", "body", "fmt", "expect"),
                         [(n, b, "json", e) for n, b, e in SEND_JSON] + [(n, b, "xml", e) for n, b, e in SEND_XML],
                         ids=[n for n, _, _ in SEND_JSON + SEND_XML])  # fmt: skip
def test_hostile_send_replies(name: str, body: str, fmt: str, expect: Expect) -> None:
    try:
        results = parse_send(body, fmt, PHONES)
    except errors.LightSmsError as error:
        assert expect.raises is not None and isinstance(error, expect.raises), f"{name}: {error!r}"
        return
    assert expect.raises is None, f"{name}: parsed, expected {expect.raises}"
    check(results, expect)


def test_readable_fields_of_an_accepted_phone_are_kept_beside_unreadable_ones() -> None:
    (result,) = parse_send('{"37061234567": {"error": "0", "id_sms": "77", "cost": "1e400", "count_sms": "3"}}',
                           "json", [A])  # fmt: skip
    assert (result.outcome, result.id_sms, result.cost, result.parts, result.unreadable) == (
        Outcome.OK, "77", None, 3, ("cost",))  # fmt: skip


# --- the helpers: ASCII digits only, bounded ------------------------------------------------------

JUNK_NUMBERS = ["²", "⁰", "０", "١٢", "०", "9" * 5000, "-0", "-1", "NaN", "Infinity", "1e400", "1_0", "", " ",
                "\ufeff1", "\u200b1", "1.0", "0x1", None, True, False, 1.0, float("inf"), float("nan"), [], {}, -1,
                10**4000]  # fmt: skip


@pytest.mark.parametrize("raw", JUNK_NUMBERS, ids=lambda v: repr(v)[:30])
def test_parse_code_and_as_int_refuse_junk(raw: object) -> None:
    assert parse_code(raw) is None
    assert as_int(raw) is None


def test_parse_code_reads_six_ascii_digits_at_most() -> None:
    assert [parse_code(x) for x in ("0", "000", " 16 ", 32, "999999")] == [0, 0, 16, 32, 999999]
    assert parse_code("1000000") is None and parse_code(1_000_000) is None


@pytest.mark.parametrize("raw", ["²", "١٢٣", "9" * 5000, "1e400", "Infinity", "NaN", "-Infinity", "sNaN", True,
                                 [], {}, float("inf"), "1_000"], ids=lambda v: repr(v)[:30])  # fmt: skip
def test_as_decimal_refuses_junk(raw: object) -> None:
    assert as_decimal(raw) is None


def test_digits_of_is_ascii_and_bounded() -> None:
    assert digits_of("+370 612 34567") == A
    assert [digits_of(k) for k in ("٣٧٠", "３７０", "3" * 40, "", "+", "370-612")] == [""] * 6


# --- lookups: unreadable is MalformedResponseError, nothing else -----------------------------------

LOOKUPS: list[tuple[str, Callable[[str, str], object]]] = [
    ("status", lambda body, fmt: parse_status(body, fmt, [ID_A, ID_B])),
    ("status one", lambda body, fmt: parse_status(body, fmt, [ID_A])),
    ("balance", parse_balance),
    ("senders", parse_senders),
    ("incoming", parse_incoming),
    ("find_on_stop", lambda body, fmt: parse_blacklist_find(body, fmt, A)),
    ("add2stop", parse_blacklist_add),
]

UNREADABLE_LOOKUP_BODIES = [
    ("[" * DEEP + "]" * DEEP, "json"),
    ('{"a": ' * DEEP + "1" + "}" * DEEP, "json"),
    ('{"error": "²"}', "json"),
    ('{"error": 1e999}', "json"),
    ('{"error": NaN}', "json"),
    ('{"error": "' + "9" * 5000 + '"}', "json"),
    ('{"error": ' + "9" * 5000 + "}", "json"),
    ('{"": {"error": "０"}}', "json"),
    ('{"error": ["19"]}', "json"),
    ('{"error": "19", "error": "7"}', "json"),
    ("9" * 5000, "json"),
    ("1e999", "json"),
    ('"x"', "json"),
    ('{"\ud800": 1', "json"),
    ('<?xml version="1.0" encoding="bogus"?><response/>', "xml"),
    ('<?xml version="1.0" encoding="shift_jis"?><response/>', "xml"),
    ('<response error="²"/>', "xml"),
    ("<error>١٩</error>", "xml"),
    (LAUGHS, "xml"),
    (EXTERNAL, "xml"),
]


@pytest.mark.parametrize(("body", "fmt"), UNREADABLE_LOOKUP_BODIES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize(("name", "parse"), LOOKUPS, ids=[n for n, _ in LOOKUPS])
def test_unreadable_lookups_are_malformed(name: str, parse: Callable[[str, str], object], body: str, fmt: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse(body, fmt)


ODD_LOOKUP_BODIES = [
    (f'{{"{ID_A}": {{"status": ["delivered"]}}, "{ID_B}": true}}', "json"),
    (f'{{"{ID_A}": "delivered", "{ID_A}": "not_deliver"}}', "json"),
    (f'{{"{ID_A}": NaN, "+{ID_B} ": 1e999}}', "json"),
    ('{"money": "1e400", "currency": ["EUR"]}', "json"),
    ('{"money": 1e400}', "json"),
    ('{"money": "' + "9" * 5000 + '"}', "json"),
    ('{"money": ' + "9" * 5000 + "}", "json"),
    ('{"money": "NaN"}', "json"),
    ('{"money": true}', "json"),
    ('{"money": "١٢"}', "json"),
    ('{"LightSMS": {"state": {"x": 1}}, "X": [1, 2], "Y": null, "Z": 1e999}', "json"),
    ('[1, true, null, {"name": ["x"]}, [[]], "ok"]', "json"),
    ('{"5597": [1], "5598": "text"}', "json"),
    ('{"5597": {"id_sms": {"x": 1}, "date": 1e999, "sender": true, "text": ["STOP"]}}', "json"),
    ('[{"date": "x"}]', "json"),
    ('{"blacklisted": {"x": 1}, "added_at": [1]}', "json"),
    ('{"1234": [1], "5678": "x"}', "json"),
    ('{"time_in": 1e999, "description": {"x": 1}}', "json"),
    ('{"id": {"x": 1}}', "json"),
    ('{"id": 1e999}', "json"),
    ('{"id": ' + "9" * 5000 + "}", "json"),
    ("{" + ", ".join(f'"{i}": "x"' for i in range(1000)) + "}", "json"),
    ('{"' + "x" * TEN_MB + '": "y"}', "json"),
    ("<a>" * DEEP + "</a>" * DEEP, "xml"),
    ('<response><statuses><status id_sms="²" status="delivered"/><status id_sms="1" status="x"/>'
     '<status id_sms="1" status="y"/></statuses></response>', "xml"),
    ('<response money="1e400" currency="EUR"/>', "xml"),
    ('<response><money>٣</money></response>', "xml"),
    ("<response><sms/><sms><sms/></sms></response>", "xml"),
    ("<response><sender/><sender name=''/></response>", "xml"),
    ("<response><id><id>1</id></id></response>", "xml"),
    ("\ufeff<response/>", "xml"),
    ("\u3000", "json"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "fmt"), ODD_LOOKUP_BODIES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize(("name", "parse"), LOOKUPS, ids=[n for n, _ in LOOKUPS])
def test_odd_lookups_raise_nothing_but_lightsms_errors(
    name: str, parse: Callable[[str, str], object], body: str, fmt: str
) -> None:
    with contextlib.suppress(errors.LightSmsError):
        parse(body, fmt)


@pytest.mark.parametrize(
    "body",
    ['{"money": "1e400"}', '{"money": 1e400}', '{"money": "NaN"}', '{"money": true}', '{"money": "١٢"}',
     '{"money": "' + "9" * 5000 + '"}', '{"money": [1]}', '<response money="Infinity"/>'],
)  # fmt: skip
def test_unreadable_balance_is_malformed(body: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_balance(body, "xml" if body.startswith("<") else "json")


def test_balance_may_be_negative_or_large() -> None:
    assert parse_balance('{"money": "-12.5"}', "json").money == Decimal("-12.5")
    assert parse_balance('{"money": "12345678.90"}', "json").money == Decimal("12345678.90")


@pytest.mark.parametrize(
    "body", ["²", "١٧٣٢٨٠٩٦٠٠", "１７３２８０９６００", "9" * 5000, "1e400", "NaN", "inf", "-1", "0x10",
             "1_732_809_600", "\ud800", "1" * 13, "1732809600.5.5"],
    ids=lambda v: repr(v)[:30],
)  # fmt: skip
def test_unreadable_timestamp_is_malformed(body: str) -> None:
    with pytest.raises(errors.MalformedResponseError):
        parse_timestamp(body)


def test_timestamp_with_a_fraction() -> None:
    assert parse_timestamp("1732809600.75\n") == 1732809600


# --- property: random mutations of a valid reply --------------------------------------------------


class Raw(str):
    """JSON text written into the body as it is (numbers past int()'s limit, NaN, deep nesting)."""


POISON = Raw("[" * 5000 + "]" * 5000)  # past the recursion limit: the whole reply is unreadable
JUNK_POOL: list[object] = [
    "²", "⁰", "０", "١٢", "٣", "०", "9" * 5000, "-0", "-1", "NaN", "Infinity", "1e400", "", " ", "\ufeff0",
    "\u200b0", "0", "16", "13", "32", "7", "6", "256", "1000000", "x" * 10_000, "\u00a0 0 \t", None, True, False,
    0, 1, 16, 7, 1.0, 0.5, -1, [], {}, ["0"], {"error": "0"}, [[["deep"]]], {"id_sms": {"x": 1}},
    Raw("1e999"), Raw("-1e999"), Raw("NaN"), Raw("Infinity"), Raw("-0"), Raw("9" * 5000), Raw("-" + "9" * 5000),
    Raw("[" * 500 + "]" * 500), POISON,
]  # fmt: skip
FIELDS = ["error", "id_sms", "cost", "count_sms"]

Pairs = list[tuple[str, object]]


def render(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Obj):
        return "{" + ", ".join(f"{json.dumps(k)}: {render(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return json.dumps(value)


@dataclass
class Obj:
    """A JSON object as written, duplicate keys and all."""

    pairs: Pairs


def poisoned(value: object) -> bool:
    if value is POISON:
        return True
    if isinstance(value, Obj):
        return any(poisoned(v) for _, v in value.pairs)
    if isinstance(value, list):
        return any(poisoned(v) for v in value)
    return False


def valid_reply() -> Obj:
    return Obj([(phone, Obj([("error", "0"), ("id_sms", sms_id), ("cost", "0.0144"), ("count_sms", "1")]))
                for phone, sms_id in zip(PHONES, (ID_A, ID_B, ID_C), strict=True)])  # fmt: skip


def mutate(reply: Obj, rng: random.Random) -> object:
    """One to four random edits: junk values, nesting, dropped fields, duplicate or renamed keys."""
    top: object = reply
    for _ in range(rng.randint(1, 4)):
        if not isinstance(top, Obj):
            break
        action = rng.choice(["junk", "junk", "junk", "nest", "drop", "dup", "rename", "record", "top"])
        index = rng.randrange(len(top.pairs))
        key, record = top.pairs[index]
        if action == "top":
            top = rng.choice([[top], Obj([("reply", top)]), rng.choice(JUNK_POOL)])
        elif action == "record":
            top.pairs[index] = (key, rng.choice(JUNK_POOL))
        elif action == "rename":
            top.pairs[index] = (rng.choice([f"+{key}", f" {key[:3]} {key[3:]} ", f"{key}0", f"+{key[:-1]}"]), record)
        elif action == "dup":
            copy = Obj(list(record.pairs)) if isinstance(record, Obj) else record
            if isinstance(copy, Obj) and rng.random() < 0.5:
                copy.pairs.append(("error", rng.choice(JUNK_POOL)))
            top.pairs.insert(rng.randrange(len(top.pairs) + 1), (key, copy))
        elif isinstance(record, Obj) and record.pairs:
            field_index = rng.randrange(len(record.pairs))
            name, value = record.pairs[field_index]
            if action == "junk":
                record.pairs[field_index] = (name, rng.choice(JUNK_POOL))
            elif action == "nest":
                record.pairs[field_index] = (name, rng.choice([[value], Obj([(name, value)])]))
            else:
                del record.pairs[field_index]
    return top


def still_accepted(top: object, phone: str) -> bool:
    """Every entry for `phone` in the reply is the same record, with error "0" and a string id_sms."""
    if not isinstance(top, Obj):
        return False
    entries = [render(v) for k, v in top.pairs if digits_of(k) == phone]
    if not entries or len(set(entries)) > 1:
        return False
    record = next(v for k, v in top.pairs if digits_of(k) == phone)
    if not isinstance(record, Obj):
        return False
    errors_, ids = [v for k, v in record.pairs if k == "error"], [v for k, v in record.pairs if k == "id_sms"]
    one_error = len(set(map(render, errors_))) == 1 and errors_[0] == "0" and not isinstance(errors_[0], Raw)
    one_id = len(set(map(render, ids))) == 1 and isinstance(ids[0], str) and not isinstance(ids[0], Raw)
    return one_error and one_id


def test_random_mutations_of_a_json_reply() -> None:
    rng = random.Random(20261122)
    outcomes: dict[str, int] = {"parsed": 0, "raised": 0, "kept": 0}
    for variant in range(3000):
        top = mutate(valid_reply(), rng)
        body = render(top)
        if rng.random() < 0.1:
            body = body[: rng.randrange(len(body))]
            top = None  # truncated: nothing can be said about the phones
        elif rng.random() < 0.1:
            body = rng.choice(["\ufeff", " \n", "\u3000"]) + body + rng.choice(["", "\r\n", "\x0c"])
        try:
            results = parse_send(body, rng.choice(["json", "xml"]), PHONES)
        except errors.LightSmsError:
            outcomes["raised"] += 1
            kept = [p for p in PHONES if top is not None and still_accepted(top, p)]
            # a whole reply is refused only when it cannot be read, or LightSMS refused the request
            assert not kept or poisoned(top), f"variant {variant}: {body[:300]!r}"
            continue
        outcomes["parsed"] += 1
        for result in results:
            if top is not None and not poisoned(top) and still_accepted(top, result.phone):
                outcomes["kept"] += 1
                assert result.outcome is Outcome.OK, f"variant {variant}: {result} from {body[:300]!r}"
            if result.outcome is Outcome.AMBIGUOUS:  # unreadable, or a code outside LightSMS's table
                assert result.code is None or result.code not in CODES or result.code == 12
            if result.cost is not None:
                assert result.cost.is_finite() and 0 <= result.cost < 1_000_000
            if result.parts is not None:
                assert 1 <= result.parts <= 255
    # the mutations exercised every path
    assert min(outcomes.values()) > 100, outcomes


XML_JUNK = ["²", "０", "١٢", "9" * 5000, "-0", "NaN", "Infinity", "1e400", "", " ", "\u00a0", "0", "16", "7", "256",
            "x" * 10_000, "&lt;", "1,2", "1.5", "\ufeff0"]  # fmt: skip


def test_random_mutations_of_an_xml_reply() -> None:
    rng = random.Random(7)
    for variant in range(2000):
        elements = [{"phone": p, "error": "0", "id_sms": i, "cost": "0.0144", "count_sms": "1"}
                    for p, i in zip(PHONES, (ID_A, ID_B, ID_C), strict=True)]  # fmt: skip
        for _ in range(rng.randint(1, 4)):
            element = rng.choice(elements)
            action = rng.choice(["junk", "junk", "drop", "dup", "rename"])
            if not element:
                continue
            name = rng.choice(sorted(element))
            if action == "junk":
                element[name] = rng.choice(XML_JUNK)
            elif action == "drop":
                del element[name]
            elif action == "dup":
                copy = dict(element)
                if rng.random() < 0.5:
                    copy["error"] = rng.choice(XML_JUNK)
                elements.insert(rng.randrange(len(elements) + 1), copy)
            elif "phone" in element:
                element["phone"] = rng.choice(
                    [" +" + element["phone"], element["phone"][:5] + " " + element["phone"][5:]]
                )
        inner = "".join("<phone " + " ".join(f"{k}={quoteattr(v)}" for k, v in e.items()) + "/>" for e in elements)
        depth = rng.choice([0, 0, 1, 50])
        body = "<x>" * depth + f"<response><phones>{inner}</phones></response>" + "</x>" * depth
        truncated = rng.random() < 0.1
        if truncated:
            body = body[: rng.randrange(len(body))]
        try:
            results = parse_send(body, "xml", PHONES)
        except errors.LightSmsError:
            # refused whole only when cut short, or a request-level error rides on an element with no phone
            # (<phone phone="" error="7"/>, LightSMS's own placement), or no phone was accepted anyway
            no_phone = any(not e.get("phone") for e in elements)
            accepted = any(e.get("error") == "0" and digits_of(e.get("phone", "")) for e in elements)
            assert truncated or no_phone or not accepted, f"variant {variant}: {body[:300]!r}"
            continue
        for result in results:
            mine = [e for e in elements if digits_of(e.get("phone", "")) == result.phone]
            same = bool(mine) and all(e == mine[0] for e in mine)
            if same and mine[0].get("error") == "0" and "id_sms" in mine[0]:
                assert result.outcome is Outcome.OK, f"variant {variant}: {result} from {body[:300]!r}"
