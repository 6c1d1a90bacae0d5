import pytest

from core.settings import DEMO_LOGIN, PRODUCTION_BASE_URL, ConfigError, load_settings


def test_local_base_url_uses_the_simulator_demo_pair(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get")
    settings = load_settings()
    assert settings.lightsms_login == DEMO_LOGIN
    assert settings.lightsms_base_url.endswith("/get/")
    assert "demo-key" not in repr(settings)


def test_production_needs_real_credentials(monkeypatch):
    monkeypatch.delenv("LIGHTSMS_LOGIN", raising=False)
    monkeypatch.setenv("LIGHTSMS_BASE_URL", PRODUCTION_BASE_URL)
    with pytest.raises(ConfigError, match="LIGHTSMS_LOGIN"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LIGHTSMS_MAX_RPS", "fast"),
        ("LIGHTSMS_MAX_RPS", "0"),
        ("LIGHTSMS_BATCH_SIZE", "500"),
        ("LIGHTSMS_TIMEZONE", "Mars/Olympus"),
        ("LIGHTSMS_BASE_URL", "ftp://example"),
        ("LIGHTSMS_DEFAULT_REGION", "XX"),
        ("LIGHTSMS_SENDER", "Bad!Sender"),
        ("LIGHTSMS_RECORD_TTL_DAYS", "10"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line(monkeypatch, variable, value):
    monkeypatch.setenv("LIGHTSMS_LOGIN", "x")
    monkeypatch.setenv("LIGHTSMS_API_KEY", "secret-key")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(variable + ":")
    assert "\n" not in str(info.value) and "secret-key" not in str(info.value)


def test_a_lease_shorter_than_one_batch_can_take_is_refused(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get/")
    monkeypatch.setenv("LIGHTSMS_LEASE_SECONDS", "5")
    with pytest.raises(ConfigError, match="^LIGHTSMS_LEASE_SECONDS: must be at least"):
        load_settings()


def test_urls_with_passwords_never_show_in_a_repr(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get")
    monkeypatch.setenv("REDIS_URL", "redis://:store-pw@10.0.0.5:6379/0")
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://user:broker-pw@10.0.0.6:5672//")
    settings = load_settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert "store-pw" not in shown and "broker-pw" not in shown
    assert settings.store_url == "redis://:store-pw@10.0.0.5:6379/0"
    assert settings.broker_url == "amqp://user:broker-pw@10.0.0.6:5672//"


def test_the_broker_defaults_to_the_store(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@127.0.0.1:6390/2")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    assert load_settings().broker_url == "redis://:pw@127.0.0.1:6390/2"


def test_the_request_deadline_defaults_to_connect_plus_read_and_bounds_the_lease(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get")
    assert load_settings().request_deadline == pytest.approx(3.05 + 10)
    monkeypatch.setenv("LIGHTSMS_REQUEST_DEADLINE", "60")
    with pytest.raises(ConfigError, match="LIGHTSMS_LEASE_SECONDS"):
        load_settings()
    monkeypatch.setenv("LIGHTSMS_LEASE_SECONDS", "600")
    assert load_settings().request_deadline == 60
