"""Lookups (status, balance, senders, incoming, blacklist, server time) against the simulator."""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal

import pytest

from lightsms import errors
from lightsms.client import LightSmsClient
from lightsms.models import DeliveryState, DeliveryStatus
from tests.support.polling import wait_until

from .conftest import PHONE_A, PHONE_B, PHONE_C, SENDER, Sim

UNKNOWN_ID = "4000000000000000000009"


def test_status_follows_delivery(client: LightSmsClient, sim: Sim) -> None:
    sim.admin.faults(delivery_outcomes={PHONE_B: "not_deliver"})
    ok, failed = client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)
    ids = [ok.id_sms or "", failed.id_sms or ""]
    assert client.status(ids)[ids[0]].state == DeliveryState.PENDING  # "sent" until delivery_seconds pass
    def all_final() -> dict[str, DeliveryStatus] | None:
        statuses = client.status(ids)
        return statuses if len(statuses) == 2 and all(s.final for s in statuses.values()) else None

    final = wait_until(all_final, timeout=5, message="final statuses")
    assert (final[ids[0]].raw, final[ids[0]].state) == ("delivered", DeliveryState.DELIVERED)
    assert (final[ids[1]].raw, final[ids[1]].state) == ("not_deliver", DeliveryState.UNDELIVERED)


def test_status_words_variant_deliver(client: LightSmsClient, sim: Sim) -> None:
    sim.admin.faults(variants={"status_words": "deliver"})
    (result,) = client.send([PHONE_A], "Hi", sender=SENDER)
    sms_id = result.id_sms or ""
    def final() -> DeliveryStatus | None:
        status = client.status([sms_id]).get(sms_id)
        return status if status is not None and status.final else None

    status = wait_until(final, timeout=5, message="a final status")
    assert (status.raw, status.state) == ("deliver", DeliveryState.DELIVERED)


@pytest.mark.parametrize("word", ["expired", "partly_deliver", "pending", "sent"])
def test_forced_status_words(client: LightSmsClient, sim: Sim, word: str) -> None:
    (result,) = client.send([PHONE_A], "Hi", sender=SENDER)
    sms_id = result.id_sms or ""
    assert sim.admin.set_status({sms_id: word}) == 1
    expected = {"expired": DeliveryState.EXPIRED, "partly_deliver": DeliveryState.PARTLY_DELIVERED}
    assert client.status(sms_id)[sms_id].state == expected.get(word, DeliveryState.PENDING)


@pytest.mark.parametrize("shape", ["{}", "19", ""])
def test_empty_shapes_are_empty_results(client: LightSmsClient, sim: Sim, shape: str) -> None:
    sim.admin.faults(variants={"empty_shape": shape})
    assert client.status([UNKNOWN_ID]) == {}
    assert client.incoming(date="2020-01-01") == []
    assert client.blacklist_find(PHONE_C) is None
    asked = [entry["endpoint"] for entry in sim.requests() if entry["endpoint"] != "timestamp"]
    assert asked == ["status", "incoming", "find_on_stop"]


def test_status_omits_unknown_ids(client: LightSmsClient) -> None:
    (result,) = client.send([PHONE_A], "Hi", sender=SENDER)
    assert list(client.status([result.id_sms or "", UNKNOWN_ID])) == [result.id_sms]


def test_balance_goes_down_by_the_cost(client: LightSmsClient) -> None:
    before = client.balance()
    assert (before.money, before.currency) == (Decimal("100"), "EUR")
    (result,) = client.send([PHONE_A], "Hi", sender=SENDER)
    assert client.balance().money == before.money - (result.cost or 0)


def test_senders(client: LightSmsClient) -> None:
    assert client.senders() == {"LightSMS": "completed", "Pending": "pending"}


def test_incoming_by_date_and_by_window(client: LightSmsClient, sim: Sim) -> None:
    ids = sim.admin.incoming(
        [
            {"sender": PHONE_A, "text": "STOP", "phone": "5163251632", "prefix": "51632",
             "date": "2025-01-15 14:23:45"},  # fmt: skip
            {"sender": PHONE_B, "text": "Labas, ačiū 😀 <&>", "date": "2025-01-15 15:10:22"},
            {"sender": PHONE_C, "text": "other day", "date": "2025-01-16 09:00:00"},
        ]
    )
    day = client.incoming(date=date(2025, 1, 15))
    assert [m.id for m in day] == ids[:2]
    assert (day[0].sender, day[0].text, day[0].phone, day[0].prefix) == (PHONE_A, "STOP", "5163251632", "51632")
    assert (day[0].date, day[1].text) == ("2025-01-15 14:23:45", "Labas, ačiū 😀 <&>")
    window = client.incoming(start=datetime(2025, 1, 15, 15, 0), end="2025-01-16 10:00:00")
    assert [m.id for m in window] == ids[1:]


def test_incoming_needs_a_date_or_a_window(client: LightSmsClient, sim: Sim) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        client.incoming()
    assert caught.value.field == "date"
    assert sim.requests() == []


@pytest.mark.parametrize("shape", ["flat", "keyed", "placeholder"])
def test_blacklist_shapes(client: LightSmsClient, sim: Sim, shape: str) -> None:
    sim.admin.faults(variants={"blacklist_shape": shape})
    assert client.blacklist_find(PHONE_A) is None
    entry_id = client.blacklist_add("+370 612 34567")
    assert entry_id
    entry = client.blacklist_find(PHONE_A)
    assert entry is not None and entry.phone == PHONE_A
    assert entry.time_in and entry.time_in[:4].isdigit()
    with pytest.raises(errors.PermanentError) as again:
        client.blacklist_add(PHONE_A)
    assert again.value.code == 20


def test_server_time_is_unsigned_and_follows_the_skew(client: LightSmsClient, sim: Sim) -> None:
    assert abs(client.server_time() - time.time()) < 5
    sim.admin.faults(clock_skew=3600)
    assert abs(client.server_time() - (time.time() + 3600)) < 5
    assert sim.endpoints() == ["timestamp", "timestamp"]
