"""SMS part counting: GSM-7 160/153, UCS-2 70/67; escape pairs and surrogate pairs never split."""

from __future__ import annotations

import pytest

from lightsms.text import GSM7, UCS2, sms_parts


@pytest.mark.parametrize(
    ("text", "parts"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("a" * 459, 3), ("a" * 460, 4)],
)
def test_gsm7_boundaries(text: str, parts: int) -> None:
    result = sms_parts(text)
    assert (result.encoding, result.units, result.parts) == (GSM7, len(text), parts)


def test_empty_text_has_no_parts() -> None:
    assert sms_parts("").parts == 0


def test_extension_characters_count_two() -> None:
    assert sms_parts("€" * 80) == sms_parts("€" * 80).__class__(GSM7, 160, 1)
    assert sms_parts("€" * 81).parts == 2
    assert sms_parts("[]{}").units == 8


def test_escape_pair_is_never_split_across_parts() -> None:
    # 306 units would fill exactly two parts, but the euro sign cannot straddle the boundary.
    text = "a" * 152 + "€" + "a" * 152
    assert sms_parts(text).units == 306
    assert sms_parts(text).parts == 3


@pytest.mark.parametrize(
    ("text", "parts"),
    [("ж" * 70, 1), ("ж" * 71, 2), ("ж" * 134, 2), ("ж" * 135, 3), ("ж" * 201, 3), ("ж" * 202, 4)],
)
def test_ucs2_boundaries(text: str, parts: int) -> None:
    result = sms_parts(text)
    assert (result.encoding, result.units, result.parts) == (UCS2, len(text), parts)


def test_one_non_gsm_character_makes_the_whole_text_ucs2() -> None:
    assert sms_parts("a" * 100 + "ж").encoding == UCS2
    assert sms_parts("a" * 100 + "ж").parts == 2


def test_surrogate_pairs_count_two() -> None:
    assert sms_parts("😀" * 35).units == 70
    assert sms_parts("😀" * 35).parts == 1
    assert sms_parts("😀" * 36).parts == 2


def test_surrogate_pair_is_never_split_across_parts() -> None:
    text = "ж" * 66 + "😀" + "ж" * 66  # 134 units: two parts if the pair could be split
    assert sms_parts(text).units == 134
    assert sms_parts(text).parts == 3
