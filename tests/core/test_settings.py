import pytest

from core.settings import (
    DEMO_LOGIN,
    PRODUCTION_BASE_URL,
    ConfigError,
    CoreSettings,
    Settings,
    load_core_settings,
    load_settings,
)
from lightsms.client import DEFAULT_BASE_URL


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


def test_a_lease_shorter_than_one_request_can_take_is_refused(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:8765/external/get/")
    monkeypatch.setenv("LIGHTSMS_LEASE_SECONDS", "12")  # one request may take 13.05 s, plus the limiter wait
    with pytest.raises(ConfigError, match="^LIGHTSMS_LEASE_SECONDS: must be at least"):
        load_settings()
    monkeypatch.setenv("LIGHTSMS_LEASE_SECONDS", "5")
    with pytest.raises(ConfigError, match="^LIGHTSMS_LEASE_SECONDS"):
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


@pytest.mark.parametrize("value", ["127.0.0.1:6379", "localhost", "redis:6379/0", "http://127.0.0.1:6379/0", ""])
def test_a_redis_url_without_a_redis_scheme_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("REDIS_URL", value)
    for load in (load_core_settings, load_settings):
        with pytest.raises(ConfigError) as info:
            load(lightsms_base_url="http://127.0.0.1:8765/external/get/")
        assert str(info.value) == "REDIS_URL: must be a redis://, rediss:// or unix:// URL"


@pytest.mark.parametrize("value", ["redis://:pw@10.0.0.5:6379/0", "rediss://10.0.0.5:6380/1", "unix:///tmp/r.sock"])
def test_redis_unix_and_tls_urls_are_accepted(monkeypatch, value):
    monkeypatch.setenv("REDIS_URL", value)
    assert load_core_settings().store_url == value


@pytest.mark.parametrize("value", ["127.0.0.1:6379", "localhost", "broker-host:5672//"])
def test_a_broker_url_without_a_scheme_is_refused_naming_it(monkeypatch, value):
    # Celery would silently fall back to amqp:// on localhost.
    monkeypatch.setenv("CELERY_BROKER_URL", value)
    with pytest.raises(ConfigError) as info:
        load_core_settings()
    assert str(info.value).startswith("CELERY_BROKER_URL: must be a URL with a scheme")
    assert value not in str(info.value)


@pytest.mark.parametrize("value", ["amqp://user:pw@rabbit:5672/sms", "redis://127.0.0.1:6379/3", "memory://"])
def test_any_broker_scheme_is_accepted(monkeypatch, value):
    monkeypatch.setenv("CELERY_BROKER_URL", value)
    assert load_core_settings().broker_url == value


def test_two_layers_core_settings_hold_no_lightsms_account(monkeypatch):
    monkeypatch.setenv("LIGHTSMS_LOGIN", "acme")
    monkeypatch.setenv("LIGHTSMS_API_KEY", "the-real-key")
    monkeypatch.setenv("LIGHTSMS_BATCH_SIZE", "20")
    core = load_core_settings()
    assert not {"lightsms_login", "lightsms_api_key", "lightsms_base_url"} & set(CoreSettings.model_fields)
    worker_only = ("lightsms_lease", "lightsms_retry", "lightsms_max_rps", "lightsms_connect", "lightsms_pause")
    assert not any(name.startswith(worker_only) for name in CoreSettings.model_fields)
    assert core.lightsms_batch_size == 20 and "the-real-key" not in repr(core.model_dump())
    full = load_settings()
    assert isinstance(full, CoreSettings) and set(CoreSettings.model_fields) < set(Settings.model_fields)
    assert (full.lightsms_login, full.lightsms_api_key.get_secret_value()) == ("acme", "the-real-key")


def test_core_settings_need_no_credentials_against_production(monkeypatch):
    for variable in ("LIGHTSMS_LOGIN", "LIGHTSMS_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LIGHTSMS_BASE_URL", PRODUCTION_BASE_URL)
    assert load_core_settings().lightsms_batch_size == 50
    with pytest.raises(ConfigError, match="^LIGHTSMS_LOGIN: required"):
        load_settings()


def test_the_production_url_is_lightsms_clients_own():
    assert PRODUCTION_BASE_URL is DEFAULT_BASE_URL
    assert Settings.model_fields["lightsms_base_url"].default is DEFAULT_BASE_URL


def test_a_variable_is_read_in_any_case_and_arguments_win(monkeypatch):
    monkeypatch.setenv("lightsms_batch_size", "7")
    assert load_core_settings().lightsms_batch_size == 7
    assert load_core_settings(lightsms_batch_size=9).lightsms_batch_size == 9


def test_a_status_deadline_before_the_first_check_is_refused():
    from core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="LIGHTSMS_STATUS_DEADLINE"):
        load_settings(lightsms_base_url="http://127.0.0.1:9/", lightsms_status_schedule="600,900",
                      lightsms_status_deadline=300)  # fmt: skip
    with pytest.raises(ConfigError, match="LIGHTSMS_INCOMING_BACKFILL"):
        load_settings(lightsms_base_url="http://127.0.0.1:9/", lightsms_incoming_backfill=10**12)


def test_sentinel_settings_give_the_broker_and_its_options():
    from core.settings import load_core_settings

    settings = load_core_settings(redis_url="redis://:master-pw@ignored:6379/2",
                                  redis_sentinels="10.0.0.1:26379,10.0.0.2:26380", redis_sentinel_master="sms",
                                  redis_sentinel_password="sentinel-pw")  # fmt: skip
    assert settings.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert settings.broker_url == "sentinel://:master-pw@10.0.0.1:26379/2;sentinel://:master-pw@10.0.0.2:26380/2"
    assert settings.broker_transport_options == {"visibility_timeout": 3600, "master_name": "sms",
                                                 "sentinel_kwargs": {"password": "sentinel-pw"}}  # fmt: skip
    assert "sentinel-pw" not in repr(settings) and "master-pw" not in repr(settings)


def test_broker_transport_options_are_a_json_object_merged_last():
    from core.settings import ConfigError, load_core_settings

    settings = load_core_settings(celery_broker_url="sentinel://10.0.0.1:26379",
                                  celery_broker_transport_options='{"master_name": "m", "visibility_timeout": 7200}')
    assert settings.broker_transport_options == {"visibility_timeout": 7200, "master_name": "m"}
    for bad in ("[1, 2]", "master_name=m"):
        with pytest.raises(ConfigError, match="CELERY_BROKER_TRANSPORT_OPTIONS: must be a JSON object"):
            load_core_settings(celery_broker_transport_options=bad)
    with pytest.raises(ConfigError, match="REDIS_SENTINELS: must be host:port"):
        load_core_settings(redis_sentinels="10.0.0.1")
