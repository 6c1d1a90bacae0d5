"""One in-process simulator for the package, reset before every test, plus hand-built clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from simulator import SimConfig, Simulator, run_in_thread
from tests.simulator.hand_client import HandClient

DELIVERY_SECONDS = 0.5


class Admin:
    """The /_sim/ API over HTTP; every helper asserts a 200."""

    def __init__(self, admin_url: str) -> None:
        self.url = admin_url
        self.session = requests.Session()
        self.session.trust_env = False

    def get(self, name: str) -> Any:
        response = self.session.get(self.url + name, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, name: str, body: Any) -> Any:
        response = self.session.post(self.url + name, json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, **changes: Any) -> dict[str, Any]:
        faults: dict[str, Any] = self.post("faults", changes)["faults"]
        return faults

    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.get("messages")["messages"]
        return messages

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("requests")["requests"]
        return [r for r in found if endpoint is None or r["endpoint"] == endpoint]


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Simulator]:
    config = SimConfig(login="demo", api_key="demo-key", delivery_seconds=DELIVERY_SECONDS, seed=7)
    with run_in_thread(config, host="127.0.0.1", port=0) as sim:
        yield sim


@pytest.fixture
def sim(shared_sim: Simulator) -> Simulator:
    response = requests.post(shared_sim.admin_url + "reset", timeout=5)
    assert response.json() == {"ok": True}
    return shared_sim


@pytest.fixture
def api(sim: Simulator) -> Iterator[HandClient]:
    client = HandClient(sim.base_url)
    yield client
    client.session.close()


@pytest.fixture
def admin(sim: Simulator) -> Iterator[Admin]:
    client = Admin(sim.admin_url)
    yield client
    client.session.close()
