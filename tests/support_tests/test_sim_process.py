"""SimProcess and SimAdmin against the real simulator process."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from lightsms.signing import sign
from tests.support.sim_process import SimAdmin, SimProcess

PHONE = "37061234567"


def send_one(sim: SimProcess, *, text: str = "hello") -> dict[str, Any]:
    """One signed send.php call, so there is something for the admin API to show."""
    session = requests.Session()
    session.trust_env = False
    timestamp = session.get(sim.base_url + "timestamp.php", timeout=5).text.strip()
    params = {"login": sim.login, "phone": PHONE, "sender": "LightSMS", "text": text, "timestamp": timestamp}
    params["signature"] = sign(params, sim.api_key)
    response = session.get(sim.base_url + "send.php", params=params, timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_the_process_listens_on_loopback_and_is_healthy(sim_process: SimProcess, sim_admin: SimAdmin) -> None:
    assert sim_process.base_url.startswith("http://127.0.0.1:")
    assert sim_process.base_url.endswith("/external/get/")
    assert sim_process.admin_url == sim_process.base_url.replace("/external/get/", "/_sim/")
    assert sim_admin.health() == {"ok": True}


def test_admin_shows_messages_and_requests_by_endpoint(sim_process: SimProcess, sim_admin: SimAdmin) -> None:
    accepted = send_one(sim_process)[PHONE]
    assert accepted["error"] == "0"

    (message,) = sim_admin.messages()
    assert (message["id_sms"], message["phone"], message["text"]) == (accepted["id_sms"], PHONE, "hello")
    assert [r["outcome"] for r in sim_admin.requests("send")] == ["accepted"]
    assert sim_admin.requests("status") == []


def test_set_status_changes_what_the_simulator_reports(sim_process: SimProcess, sim_admin: SimAdmin) -> None:
    id_sms = send_one(sim_process)[PHONE]["id_sms"]

    assert sim_admin.set_status({id_sms: "not_deliver"}) == 1

    assert sim_admin.messages()[0]["status"] == "not_deliver"


def test_reset_forgets_messages_and_faults(sim_process: SimProcess, sim_admin: SimAdmin) -> None:
    send_one(sim_process)
    assert sim_admin.faults(latency_ms=5, phone_errors={PHONE: 13})["latency_ms"] == 5
    assert sim_admin.incoming([{"sender": "+37060000000", "text": "STOP"}])

    sim_admin.reset()

    assert sim_admin.messages() == []
    assert sim_admin.requests() == []
    faults = sim_admin.faults()
    assert faults["latency_ms"] == 0 and faults["phone_errors"] == {}


def test_a_bad_admin_call_raises_with_the_answer(sim_admin: SimAdmin) -> None:
    with pytest.raises(AssertionError, match="answered 4"):
        sim_admin.faults(http_500_rate="not a number")


def test_kill_takes_the_simulator_down() -> None:
    with SimProcess(login="other", api_key="other-key") as sim:
        admin = sim.admin()
        assert admin.health() == {"ok": True}
        assert "other-key" not in repr(sim) + repr(sim.process)

        sim.kill()

        assert not sim.alive
        with pytest.raises(requests.ConnectionError):
            admin.health()
