"""The worker's broker options: on Redis, the store (not kombu's emulated acks) brings a lost task back."""

from __future__ import annotations

import pytest

from core.settings import Settings
from worker.celery_app import worker_config

LOCAL = "http://127.0.0.1:1/"


@pytest.mark.parametrize(
    "broker", ["redis://127.0.0.1:6390/1", "rediss://127.0.0.1:6390/1", "redis+socket:///tmp/redis.sock", "sentinel://127.0.0.1:26379/0"],
)  # fmt: skip
def test_on_redis_the_worker_leaves_acks_to_the_store(broker):
    options = worker_config(Settings(lightsms_base_url=LOCAL, celery_broker_url=broker))["broker_transport_options"]
    assert options["ack_emulation"] is False
    assert options["visibility_timeout"] == 3600  # the rest of the options kept


def test_an_operator_can_turn_kombus_acks_back_on():
    settings = Settings(lightsms_base_url=LOCAL, celery_broker_url="redis://127.0.0.1:6390/1",
                        celery_broker_transport_options='{"ack_emulation": true}')  # fmt: skip
    assert worker_config(settings)["broker_transport_options"]["ack_emulation"] is True


def test_other_brokers_get_no_redis_option():
    settings = Settings(lightsms_base_url=LOCAL, celery_broker_url="amqp://guest:guest@127.0.0.1:5672//")
    assert "ack_emulation" not in worker_config(settings)["broker_transport_options"]


def test_a_ready_worker_keeps_what_it_loaded_at_start_out_of_full_collections():
    import gc

    from celery import signals

    import worker.celery_app  # noqa: F401 - connects the handler

    gc.unfreeze()
    try:
        signals.worker_ready.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
