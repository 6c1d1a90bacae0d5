import pytest

from producers.settings import DEMO_LOGIN, PRODUCTION_BASE_URL, ConfigError, load_settings


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
