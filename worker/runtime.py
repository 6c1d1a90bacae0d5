"""The per-process parts a worker shares between its threads, built once on first use."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

from core.client import arrival_window, build_client
from core.events import EventPublisher, broker_connection
from core.pause import AccountCircuit
from core.redis_client import FAIL_FAST, store_client
from core.settings import Settings, get_settings
from core.stats import Stats
from lightsms.client import LightSmsClient
from producers.producer import Producer

from .delivery import StatusPoller
from .inbound import IncomingPoller
from .leases import LeaseKeeper
from .limiter import RateLimiter
from .maintenance import Maintenance
from .policy import RetryPolicy
from .sending import BatchSender


@dataclass
class Runtime:
    settings: Settings
    client: LightSmsClient
    sender: BatchSender
    maintenance: Maintenance
    incoming: IncomingPoller
    delivery: StatusPoller


def build_runtime(settings: Settings, *, celery_app: object | None = None) -> Runtime:
    connection = store_client(settings, **FAIL_FAST)
    producer = Producer(settings, redis_client=connection, celery_app=celery_app)  # type: ignore[arg-type]
    login = settings.lightsms_login
    window = arrival_window(settings, connection)
    client = build_client(settings, pool_size=max(16, settings.lightsms_worker_concurrency * 2), window=window)
    circuit = AccountCircuit(connection, login=login)
    policy = RetryPolicy.from_settings(settings)
    limiter = RateLimiter(
        connection, login=login, rate=settings.lightsms_max_rps, margin=settings.lightsms_limiter_margin,
        stats=Stats(connection),
    )
    sender = BatchSender(
        settings=settings,
        store=producer.store,
        client=client,
        limiter=limiter,
        circuit=circuit,
        requeue=producer.requeue,
        leases=LeaseKeeper(producer.store, lease_seconds=settings.lightsms_lease_seconds),
        window=window,
    )
    # One publisher per process for both pollers: they run one after the other on the poll thread.
    publisher = EventPublisher(broker_connection(settings))
    incoming = IncomingPoller(settings=settings, redis=connection, client=client, publisher=publisher, limiter=limiter)
    delivery = StatusPoller(
        settings=settings, store=producer.store, stats=Stats(connection), client=client, limiter=limiter,
        circuit=circuit, publisher=publisher,
    )  # fmt: skip
    return Runtime(settings, client, sender, Maintenance(producer, circuit, policy), incoming, delivery)


_lock = threading.Lock()


@functools.cache
def _cached(celery_app: object | None) -> Runtime:
    return build_runtime(get_settings(), celery_app=celery_app)


def runtime(celery_app: object | None = None) -> Runtime:
    with _lock:
        return _cached(celery_app)
