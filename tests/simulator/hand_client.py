"""Requests built by hand, exactly as the LightSMS docs' Python example builds them.

Deliberately NOT lightsms.signing: if the client and the simulator shared one signing mistake,
tests using it could not notice.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlencode

import requests

__all__ = ["HandClient", "signed_query"]


def signed_query(params: dict[str, Any], api_key: str) -> str:
    """The docs' recipe: sorted(params.items()), values joined, + api key, md5 hex, urlencode."""
    params = dict(params)
    sorted_params = sorted(params.items())
    param_string = "".join([str(value) for key, value in sorted_params])
    params["signature"] = hashlib.md5((param_string + api_key).encode()).hexdigest()
    return urlencode(params)


class HandClient:
    def __init__(self, base_url: str, *, login: str = "demo", api_key: str = "demo-key") -> None:
        self.base_url = base_url
        self.login = login
        self.api_key = api_key
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only; skip proxy lookups

    def timestamp(self) -> str:
        response = self.session.get(self.base_url + "timestamp.php", timeout=5)
        response.raise_for_status()
        return response.text.strip()

    def params(self, fmt: str = "json", **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"login": self.login, "timestamp": str(int(time.time())), "return": fmt}
        params.update(extra)
        return params

    def raw(self, endpoint: str, query: str, *, timeout: float = 5) -> requests.Response:
        return self.session.get(f"{self.base_url}{endpoint}.php?{query}", timeout=timeout)

    def call(
        self, endpoint: str, fmt: str = "json", *, timeout: float = 5, api_key: str | None = None, **extra: Any
    ) -> requests.Response:
        """A correctly signed request; `extra` are endpoint params (and may override login/timestamp)."""
        query = signed_query(self.params(fmt, **extra), self.api_key if api_key is None else api_key)
        return self.raw(endpoint, query, timeout=timeout)

    def json(self, endpoint: str, **extra: Any) -> Any:
        response = self.call(endpoint, **extra)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, phone: str, text: str = "Hello", sender: str = "LightSMS", **extra: Any) -> Any:
        return self.json("send", phone=phone, text=text, sender=sender, **extra)
