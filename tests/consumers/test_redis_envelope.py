"""consumers/redis_envelope.py on every odd shape a list on a Redis broker can hold, and the broker
version check (pure logic: what kombu writes and reads is pinned against a real Redis in
test_recovery.py and test_runner.py)."""

from __future__ import annotations

import base64
import json

import pytest
from kombu import Connection
from kombu.compression import compress
from kombu.exceptions import ContentDisallowed

from consumers.failures import RETRIES_HEADER, retries_of
from consumers.redis_consumer import _check_version
from consumers.redis_envelope import EnvelopeError, new_envelope, read_envelope
from consumers.runner import EventConsumer
from core.errors import ConfigError


def _kombu(body: bytes, content_type: str = "application/json", **extra: object) -> bytes:
    return json.dumps({"body": base64.b64encode(body).decode(), "content-encoding": "utf-8",
                       "content-type": content_type, "headers": {RETRIES_HEADER: 2},
                       "properties": {"body_encoding": "base64", "delivery_tag": "t1"}, **extra}).encode()  # fmt: skip


@pytest.mark.parametrize("raw", [
    b"\xff\xfe not json", b"[1, 2]", b"42", b"null", b'"text"', b"{}", b'{"body": 7}', b'{"body": null}',
    b'{"body": "!!", "properties": {"body_encoding": "base64"}}', b'{"body": "", "headers": [1]}',
    b'{"body": "e30=", "properties": "not an object"}', b"[" * 200_000, b'{"body": "' + b"\\u00" * 5 + b'"}',
])  # fmt: skip
def test_anything_but_a_kombu_message_is_an_envelope_error(raw):
    with pytest.raises(EnvelopeError, match="not a kombu message"):
        read_envelope(raw)


def test_a_kombu_message_reads_back_to_its_event_headers_and_all():
    envelope = read_envelope(_kombu(b'{"id": "in-1", "text": "\\u00e9"}'))
    assert envelope.decode() == {"id": "in-1", "text": "é"}
    assert envelope.headers == {RETRIES_HEADER: 2}


def test_a_body_that_is_not_base64_encoded_is_taken_as_it_is():
    raw = json.dumps({"body": '{"id": "x"}', "content-type": "application/json", "properties": {}}).encode()
    assert read_envelope(raw).decode() == {"id": "x"}


@pytest.mark.parametrize("content_type", ["application/x-python-serialize", "application/x-yaml", "text/x-made-up"])
def test_a_content_type_a_handler_may_not_get_refuses_to_decode(content_type):
    with pytest.raises(ContentDisallowed):
        read_envelope(_kombu(b"anything", content_type)).decode()


def test_bad_json_in_a_good_envelope_refuses_to_decode():
    with pytest.raises(Exception) as caught:  # noqa: PT011  kombu's DecodeError or json's, by version
        read_envelope(_kombu(b"{not json")).decode()
    assert caught.type is not EnvelopeError


def test_again_keeps_the_body_changes_the_count_and_takes_a_new_tag():
    first = read_envelope(_kombu(b'{"id": "in-1"}'))
    second = read_envelope(first.again(**{RETRIES_HEADER: 3}))
    assert second.decode() == {"id": "in-1"} and second.headers == {RETRIES_HEADER: 3}
    assert second.message["properties"]["delivery_tag"] != "t1"
    assert first.headers == {RETRIES_HEADER: 2}  # the original is untouched


def test_a_new_envelope_is_a_json_message_through_the_default_exchange():
    envelope = read_envelope(new_envelope({"event": {"id": "x"}, "text": "é"}, "sms.inbound.dead"))
    assert envelope.decode() == {"event": {"id": "x"}, "text": "é"}
    assert envelope.content_type == "application/json"
    assert envelope.message["properties"]["delivery_info"] == {"exchange": "", "routing_key": "sms.inbound.dead"}


class _Info:
    def __init__(self, version: str) -> None:
        self.version = version

    def info(self, section: str) -> dict[str, str]:
        return {"redis_version": self.version}


@pytest.mark.parametrize(("version", "refused"), [("5.0.14", True), ("6.0.20", True), ("6.2.0", False),
                                                  ("7.0.15", False), ("10.1.2", False), ("", False)])  # fmt: skip
def test_a_broker_without_blmove_is_refused_with_its_version(version, refused):
    if refused:
        with pytest.raises(ConfigError, match=f"version {version}; consumers need 6.2 or later"):
            _check_version(_Info(version))  # type: ignore[arg-type]
    else:
        _check_version(_Info(version))  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["zlib", "bzip2"])
def test_a_compressed_body_is_decompressed_as_kombu_does(method):
    compressed, content_type = compress(b'{"id": "in-1"}', method)
    raw = json.loads(_kombu(compressed))
    raw["headers"]["compression"] = content_type
    assert read_envelope(json.dumps(raw).encode()).decode() == {"id": "in-1"}


def test_the_kombu_consumer_is_refused_a_redis_broker():
    with pytest.raises(ConfigError, match="a Redis broker has its own consumer"):
        EventConsumer(Connection("redis://127.0.0.1:9/0"), lambda event: None, queue="sms.inbound",
                      store=None, max_retries=1, prefetch=1)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("count", [float("inf"), float("nan"), "Infinity", 10**400, "3.5", None, [], {"n": 1}])
def test_a_retry_count_of_any_odd_shape_reads_as_a_number(count):
    assert retries_of({RETRIES_HEADER: count}) in (0, 10**400)
