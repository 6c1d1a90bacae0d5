"""kombu's Redis transport message, read and written by hand for redis_consumer.py.

An event on a Redis broker is a JSON envelope on a list named as the queue, as kombu's virtual
transport writes it (core.events publishes through kombu): the body, serialised by its content type
and then base64-encoded, beside headers and properties. The consumer reads it off the list itself
(BLMOVE), so it decodes it itself; what it writes back (a retry, a dead record) must be what kombu
would have written, since DeadLetters and any kombu consumer read it. tests/consumers pin both ways.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from kombu.compression import decompress
from kombu.serialization import dumps, loads, prepare_accept_content

__all__ = ["Envelope", "EnvelopeError", "new_envelope", "read_envelope"]

ACCEPT = prepare_accept_content(["json"])  # what a handler may be given: never pickle


class EnvelopeError(ValueError):
    """The list held something that is not a kombu message at all."""


@dataclass(frozen=True)
class Envelope:
    message: dict[str, Any]  # the whole envelope, as read
    body: bytes  # serialised, base64 undone
    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any]

    def decode(self) -> Any:
        """The event, by its content type (decompressed first, as kombu does); raises for a type a
        handler may not get, or a bad body."""
        body = self.body
        if self.headers.get("compression"):
            body = decompress(body, self.headers["compression"])
        return loads(body, self.content_type, self.content_encoding, accept=ACCEPT)

    def again(self, **headers: Any) -> bytes:
        """This message once more, with these headers changed, under a delivery tag of its own."""
        message = dict(self.message)
        message["headers"] = {**self.headers, **headers}
        message["properties"] = {**message.get("properties", {}), "delivery_tag": str(uuid.uuid4())}
        return json.dumps(message).encode()


def read_envelope(raw: bytes) -> Envelope:
    try:
        message = json.loads(raw)
        body = message["body"]
        properties = message.get("properties") or {}
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body, validate=True)
        headers = message.get("headers") or {}
        if not isinstance(headers, dict):
            raise TypeError("headers are not an object")
    except Exception as exc:  # anything at all on the list: nested a thousand deep, huge numbers...
        raise EnvelopeError(f"not a kombu message ({type(exc).__name__})") from None
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    if not isinstance(body, bytes):
        raise EnvelopeError(f"not a kombu message (a body of type {type(body).__name__})")
    return Envelope(message, body, message.get("content-type"), message.get("content-encoding"), headers)


def new_envelope(event: Any, queue: str) -> bytes:
    """A JSON event as kombu's Redis transport publishes it to `queue` through the default exchange."""
    content_type, content_encoding, data = dumps(event, serializer="json")
    body = data.encode(content_encoding) if isinstance(data, str) else data
    return json.dumps({
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": {},
        "properties": {
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }).encode()  # fmt: skip
