"""Delivery status over time: sent -> delivered, scheduled -> pending, outcomes and overrides."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.simulator.conftest import Admin
from tests.simulator.hand_client import HandClient
from tests.support.polling import wait_until

PHONE, PHONE2 = "37061234567", "37062345678"


def status_of(api: HandClient, id_sms: str) -> str | None:
    return api.json("status", state=id_sms).get(id_sms)


def test_sent_then_delivered(api: HandClient, admin: Admin) -> None:
    id_sms = api.send(PHONE)[PHONE]["id_sms"]
    assert status_of(api, id_sms) == "sent"
    wait_until(lambda: status_of(api, id_sms) == "delivered", timeout=5, message="delivered")
    assert admin.messages()[0]["status"] == "delivered"


def test_delivery_outcome_per_phone(api: HandClient, admin: Admin) -> None:
    admin.faults(delivery_outcomes={PHONE2: "not_deliver"})
    reply = api.send(f"{PHONE},{PHONE2}")
    ok, failed = reply[PHONE]["id_sms"], reply[PHONE2]["id_sms"]
    both = f"{ok},{failed}"
    wait_until(
        lambda: api.json("status", state=both) == {ok: "delivered", failed: "not_deliver"},
        timeout=5,
        message="final statuses",
    )


def test_scheduled_pending_then_sent_then_delivered(api: HandClient) -> None:
    soon = datetime.now(ZoneInfo("Europe/Vilnius")) + timedelta(seconds=1.5)
    id_sms = api.send(PHONE, sendingTime=soon.strftime("%Y-%m-%d %H:%M:%S"))[PHONE]["id_sms"]
    assert status_of(api, id_sms) == "pending"
    seen: list[str | None] = []

    def delivered() -> bool:
        seen.append(status_of(api, id_sms))
        return seen[-1] == "delivered"

    wait_until(delivered, timeout=6, interval=0.05, message="scheduled delivery")
    assert "sent" in seen  # the sending window between sendingTime and delivery was observed


def test_forced_status_sticks(api: HandClient, admin: Admin) -> None:
    reply = api.send(f"{PHONE},{PHONE2}")
    forced, other = reply[PHONE]["id_sms"], reply[PHONE2]["id_sms"]
    assert admin.post("status", {"statuses": {forced: "expired", "0000000000000000000000": "x"}}) == {"updated": 1}
    assert status_of(api, forced) == "expired"
    # Once the other message has passed its delivery time, the forced one still says what we set.
    wait_until(lambda: status_of(api, other) == "delivered", timeout=5, message="other delivered")
    assert status_of(api, forced) == "expired"
    assert {m["id_sms"]: m["status"] for m in admin.messages()} == {forced: "expired", other: "delivered"}
