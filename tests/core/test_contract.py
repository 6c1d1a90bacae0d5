import pytest

from core.contract import PayloadError, read_payload, send_payload


def test_payload_round_trips_ids_only():
    payload = send_payload(["a", "b"])
    assert payload == {"v": 1, "ids": ["a", "b"]}
    assert read_payload(payload) == ["a", "b"]


@pytest.mark.parametrize("payload", [{"v": 2, "ids": ["a"]}, {"ids": ["a"]}, {"v": 1, "ids": "a"}, ["a"], None])
def test_unknown_or_malformed_payloads_are_refused(payload):
    with pytest.raises(PayloadError):
        read_payload(payload)
