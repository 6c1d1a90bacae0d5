"""LightSmsClient.send against the simulator over real HTTP, JSON and XML."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from lightsms import errors
from lightsms.client import LightSmsClient
from lightsms.codes import Outcome

from .conftest import PHONE_A, PHONE_B, PHONE_C, SENDER, ClientFactory, Sim


def test_send_accepts_each_phone_in_input_order(client: LightSmsClient, sim: Sim) -> None:
    results = client.send([PHONE_B, "+370 612 34567"], "Hello!", sender=SENDER)
    assert [r.phone for r in results] == [PHONE_B, PHONE_A]
    assert all(r.outcome is Outcome.OK and r.code == 0 for r in results)
    assert all(r.id_sms is not None and len(r.id_sms) == 22 and r.id_sms.isdigit() for r in results)
    assert [(r.cost, r.parts) for r in results] == [(Decimal("0.0144"), 1)] * 2
    stored = {m["id_sms"]: m for m in sim.admin.messages()}
    assert {stored[r.id_sms]["phone"] for r in results if r.id_sms} == {PHONE_A, PHONE_B}
    assert all(m["text"] == "Hello!" and m["sender"] == SENDER for m in stored.values())


def test_unicode_text_arrives_intact_and_is_billed_per_part(client: LightSmsClient, sim: Sim) -> None:
    text = "Привет, мир! 😀 " * 5  # 80 UTF-16 units: two UCS-2 parts
    (result,) = client.send([PHONE_A], text, sender=SENDER)
    assert (result.parts, result.cost) == (2, Decimal("0.0288"))
    assert sim.admin.messages()[0]["text"] == text


def test_sending_time_is_sent_as_minutes(client: LightSmsClient, sim: Sim) -> None:
    when = datetime.now() + timedelta(days=1)
    (result,) = client.send([PHONE_A], "Later", sender=SENDER, sending_time=when)
    assert result.accepted
    assert sim.admin.messages()[0]["sendingTime"] == when.strftime("%Y-%m-%d %H:%M")
    assert client.status([result.id_sms or ""])[result.id_sms or ""].raw == "pending"


def test_per_phone_errors_are_independent(client: LightSmsClient, sim: Sim) -> None:
    sim.admin.faults(phone_errors={PHONE_B: 12, PHONE_C: 31})
    ok, transient, closed = client.send([PHONE_A, PHONE_B, PHONE_C], "Hi", sender=SENDER)
    assert ok.outcome is Outcome.OK
    assert (transient.code, transient.outcome, transient.id_sms) == (12, Outcome.AMBIGUOUS, None)
    assert (closed.code, closed.outcome) == (31, Outcome.PERMANENT)
    assert [m["phone"] for m in sim.admin.messages()] == [PHONE_A]


def test_insufficient_funds_per_phone(client: LightSmsClient, sim: Sim) -> None:
    sim.admin.faults(balance=0.02)  # enough for one part at 0.0144
    first, second = client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)
    assert first.outcome is Outcome.OK
    assert (second.code, second.outcome) == (32, Outcome.ACCOUNT)


def test_int_codes_variant(client: LightSmsClient, sim: Sim) -> None:
    sim.admin.faults(phone_errors={PHONE_B: 16}, variants={"int_codes": True})
    ok, invalid = client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)
    assert ok.outcome is Outcome.OK and ok.id_sms is not None and len(ok.id_sms) == 22
    assert ok.cost == Decimal("0.0144") and ok.parts == 1
    assert (invalid.code, invalid.outcome) == (16, Outcome.PERMANENT)
    assert client.balance().money == Decimal("99.9856")


@pytest.mark.parametrize("shape", ["top", "empty_key", "phone"])
def test_request_level_errors_in_every_shape(client: LightSmsClient, sim: Sim, shape: str) -> None:
    sim.admin.faults(variants={"error_shape": shape})
    with pytest.raises(errors.PermanentError) as not_registered:
        client.send([PHONE_A, PHONE_B], "Hi", sender="Unknown")
    assert not_registered.value.code == 9
    with pytest.raises(errors.PermanentError) as not_approved:
        client.send([PHONE_A], "Hi", sender="Pending")
    assert not_approved.value.code == 10
    sim.admin.faults(forbidden_words=["casino"])
    with pytest.raises(errors.PermanentError) as forbidden:
        client.send([PHONE_A, PHONE_B], "Best casino", sender=SENDER)
    assert forbidden.value.code == 11
    assert sim.admin.messages() == []


def test_batch_limit_of_the_server_is_a_request_error(make_client: ClientFactory, sim: Sim) -> None:
    sim.admin.faults(batch_limit=2)
    client = make_client(batch_limit=3)
    with pytest.raises(errors.PermanentError) as caught:
        client.send([PHONE_A, PHONE_B, PHONE_C], "Hi", sender=SENDER)
    assert caught.value.code == 14


def test_stop_listed_phone_is_suppressed(client: LightSmsClient, sim: Sim) -> None:
    client.blacklist_add(PHONE_B)
    ok, stopped = client.send([PHONE_A, PHONE_B], "Hi", sender=SENDER)
    assert ok.accepted
    assert (stopped.code, stopped.outcome) == (13, Outcome.SUPPRESSION)


def test_keep_alive_reuses_one_pooled_connection(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client()
    for index in range(25):
        (result,) = client.send([PHONE_A], f"Message {index}", sender=SENDER)
        assert result.accepted
    manager = client.transport.adapter.poolmanager
    pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118 - a RecentlyUsedContainer
    assert len(pools) == 1
    assert pools[0].num_connections == 1  # 25 sends + 1 timestamp.php over a single TCP connection
    assert pools[0].num_requests == 26
    assert sim.endpoints().count("timestamp") == 1
    assert len(sim.requests("send")) == 25
