"""No Redis password in what Celery shows of its configuration (`celery inspect conf`, Flower's config view) nor in
what `celery -A worker beat` logs, while beat still uses REDIS_URL with its password (worker/beat.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from redbeat.schedulers import get_redis

from core.settings import Settings, get_settings
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, venv_executable
from tests.support.redis_server import RedisServer
from tests.worker.stack import TEST_ENV
from worker.beat import ResilientRedBeatScheduler
from worker.celery_app import worker_config

REDIS_PASSWORD = "s3cret"
BROKER_PASSWORD = "br0ker-pw"
REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6390/0"
BROKER_URL = f"redis://:{BROKER_PASSWORD}@127.0.0.1:6391/1"


def env(redis_url: str = REDIS_URL, broker_url: str = BROKER_URL) -> dict[str, str]:
    return {
        **TEST_ENV,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "LIGHTSMS_BASE_URL": "http://127.0.0.1:1/",
    }


def assert_no_password(text: str) -> None:
    assert REDIS_PASSWORD not in text
    assert BROKER_PASSWORD not in text


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    """The worker's Celery app configuration, from an environment whose URLs carry passwords."""
    for name, value in env().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # the scheduler reads REDIS_URL through get_settings()
    try:
        app = Celery("secrets-test", set_as_current=False)
        app.conf.update(worker_config(get_settings()))
        yield app
    finally:
        get_settings.cache_clear()


def test_celery_config_views_show_no_redis_password(app: Celery):
    assert isinstance(get_settings(), Settings)
    assert_no_password(app.conf.humanize(with_defaults=False, censored=True))
    assert_no_password(repr(app.conf.table(with_defaults=True, censored=True)))
    assert "redbeat_redis_url" not in app.conf


def test_beat_uses_redis_url_with_its_password_and_shows_none(app: Celery):
    scheduler = ResilientRedBeatScheduler(app, lazy=True)  # lazy: nothing connects
    assert app.redbeat_conf.redis_url == REDIS_URL
    client = get_redis(app)  # built, not connected
    assert client.connection_pool.connection_kwargs["port"] == 6390  # REDIS_URL's server, not the broker's
    assert client.connection_pool.connection_kwargs["password"] == REDIS_PASSWORD
    assert_no_password(scheduler.info)
    # Building the scheduler added nothing to what Celery's config views show.
    assert_no_password(app.conf.humanize(with_defaults=False, censored=True))
    assert_no_password(repr(app.conf.table(with_defaults=True, censored=True)))


def run_beat_briefly(environment: dict[str, str], ready: str) -> str:
    argv = [venv_executable("celery"), "-A", "worker", "beat", "--loglevel=DEBUG"]
    process = ManagedProcess(argv, name="beat-secrets", env=environment, ready=ready)
    try:
        process.start()
        process.wait_ready(timeout=30)
        assert process.alive
    finally:
        process.terminate(timeout=10)
    return process.output()


def test_beat_logs_no_password_while_scheduling(redis_server: RedisServer, redis_client: redis.Redis):
    # The default user has no password, and Redis accepts any password for it given with a user name
    # (`AUTH default <password>`), so these URLs really connect: beat runs with its passwords in hand.
    port = redis_server.port
    environment = env(
        redis_url=f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
        broker_url=f"redis://default:{BROKER_PASSWORD}@127.0.0.1:{port}/1",
    )
    output = run_beat_briefly(environment, ready=r"Sending due task move-due")
    assert "beat: Acquired lock" in output
    assert_no_password(output)


def test_beat_starts_and_logs_no_password_when_redis_is_unreachable():
    port = free_port()  # nothing listens there
    environment = env(
        redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
        broker_url=f"redis://:{BROKER_PASSWORD}@127.0.0.1:{port}/1",
    )
    output = run_beat_briefly(environment, ready=r"beat: Redis unreachable")
    assert_no_password(output)


def test_sentinel_passwords_are_masked_in_celerys_config_view():
    settings = Settings(lightsms_base_url="http://127.0.0.1:1/", redis_url="redis://:master-pw@ignored:6379/0",
                        redis_sentinels="127.0.0.1:26379", redis_sentinel_password="sentinel-pw")  # fmt: skip
    app = Celery("sentinel-view", set_as_current=False)
    app.conf.update(worker_config(settings))
    shown = repr(app.conf.table(with_defaults=False, censored=True))
    assert "sentinel://" in shown and "master_name" in shown
    assert "master-pw" not in shown and "sentinel-pw" not in shown
