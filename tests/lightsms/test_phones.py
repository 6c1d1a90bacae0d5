from __future__ import annotations

import pytest

from lightsms.errors import InvalidInput
from lightsms.phones import mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+370 612 34567", None, "37061234567"),
        ("0037061234567", None, "37061234567"),
        ("37061234567", None, "37061234567"),
        (37061234567, None, "37061234567"),
        ("+1 (202) 555-0123", None, "12025550123"),
        ("861234567", "LT", "37061234567"),  # national, with LT's trunk prefix
        ("861234567", "lt", "37061234567"),
        ("37061234567", "LT", "37061234567"),
        ("37061234567", "US", "37061234567"),  # not a US national number: read as international
        ("0037061234567", "US", "37061234567"),
        ("2025550123", "US", "12025550123"),
    ],
)
def test_normalizes_to_international_digits(raw: object, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, default_region=region) == expected


@pytest.mark.parametrize("raw", ["", "   ", "123", "+370 612", "3706123456789012", "37061234567x", "+370-abc", None])
def test_invalid_numbers_are_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw)
    assert caught.value.field == "phone"


def test_national_number_without_a_region_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a valid phone number"):
        normalize_phone("861234567")


def test_error_message_masks_the_number() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("370612345678901")
    assert "370612345678901" not in str(caught.value)
    assert "370*********901" in str(caught.value)


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone("861234567", default_region="XX")
    assert caught.value.field == "default_region"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("37061234567", "370*****567"), ("12025550123", "120*****123"), ("123456", "1****6"), ("1234", "****")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("4915112345678", "DE", "4915112345678"),  # already international for the region itself
        ("491711234567", "DE", "491711234567"),
        ("01511 2345678", "DE", "4915112345678"),  # national, with the trunk prefix
        ("+37061234567", "DE", "37061234567"),
    ],
)
def test_a_default_region_never_prefixes_its_own_country_code_twice(raw, region, expected):
    assert normalize_phone(raw, default_region=region) == expected


@pytest.mark.parametrize("raw", [["37061234567"], {"37061234567": 1}, {"37061234567"}, b"37061234567", 3.7e10])
def test_a_phone_of_any_other_type_is_invalid_input_even_unhashable(raw: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_phone(raw)
    assert refused.value.field == "phone"


def test_the_same_number_checked_again_gives_the_same_answer_and_int_equals_text() -> None:
    assert normalize_phone("+370 612 34567") == normalize_phone("+370 612 34567") == "37061234567"
    assert normalize_phone(37061234567) == "37061234567"
    with pytest.raises(InvalidInput):
        normalize_phone(True)  # never read as 1, whatever was asked before
