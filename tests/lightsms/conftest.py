"""The LightSMS simulator in this process (simulator.run_in_thread) and clients pointed at it.

One simulator for the package, reset through its admin API before each test that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lightsms.client import LightSmsClient
from tests.support.sim_process import SimAdmin

LOGIN = "demo"
API_KEY = "s3cr3t-API-key-never-shown"  # distinctive, so a leak is easy to spot
PHONE_A, PHONE_B, PHONE_C = "37061234567", "37062345678", "37063456789"
SENDER = "LightSMS"


@dataclass
class Sim:
    base_url: str
    admin: SimAdmin

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self.admin.requests(endpoint)

    def endpoints(self) -> list[str]:
        """Endpoints of every request received so far, oldest first."""
        return [entry["endpoint"] for entry in self.admin.requests()]


@pytest.fixture(scope="session")
def lightsms_sim() -> Iterator[Any]:
    from simulator import SimConfig, run_in_thread

    config = SimConfig(login=LOGIN, api_key=API_KEY, delivery_seconds=0.2, seed=7)
    with run_in_thread(config, host="127.0.0.1", port=0) as simulator:
        yield simulator


@pytest.fixture
def sim(lightsms_sim: Any) -> Iterator[Sim]:
    admin = SimAdmin(lightsms_sim.admin_url)
    admin.reset()
    yield Sim(lightsms_sim.base_url, admin)
    admin.close()


ClientFactory = Callable[..., LightSmsClient]


@pytest.fixture
def make_client(sim: Sim) -> Iterator[ClientFactory]:
    """Clients of the simulator (short timeouts); closed after the test."""
    made: list[LightSmsClient] = []

    def make(**options: Any) -> LightSmsClient:
        options.setdefault("base_url", sim.base_url)
        options.setdefault("timeout", (1.0, 3.0))
        login = options.pop("login", LOGIN)
        api_key = options.pop("api_key", API_KEY)
        client = LightSmsClient(login, api_key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(params=["json", "xml"])
def response_format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(make_client: ClientFactory, response_format: str) -> LightSmsClient:
    return make_client(response_format=response_format)
