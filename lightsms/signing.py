"""The LightSMS request signature: a pure function of the parameters and the API key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def sign(params: Mapping[str, object], api_key: str) -> str:
    """Lowercase MD5 of every value except `signature`, sorted by name, concatenated raw, plus the key.

    `return`, `login` and `timestamp` are signed like any other parameter; values are used as sent,
    before URL-encoding.
    """
    joined = "".join(str(params[name]) for name in sorted(params) if name != "signature")
    return hashlib.md5((joined + api_key).encode("utf-8")).hexdigest()
