"""The API key and the request signature never show in reprs, exceptions, tracebacks or logs;
phone numbers and text stay out of urllib3's debug log lines."""

from __future__ import annotations

import logging
import pickle
import re
import traceback
from collections.abc import Callable

import pytest

from lightsms import errors
from lightsms.client import LightSmsClient

from .conftest import API_KEY, PHONE_A, SENDER, ClientFactory, Sim

HEX32 = re.compile(r"[0-9a-f]{32}")
TEXT = "Secret text 4711"


def assert_clean(text: str) -> None:
    assert API_KEY not in text
    assert "signature=" not in text
    assert not HEX32.search(text), text  # an md5 signature


def test_client_repr_and_attributes_hide_the_key(make_client: ClientFactory) -> None:
    client = make_client()
    assert "api_key='***'" in repr(client)
    assert_clean(repr(client))
    assert_clean(str(client))
    assert_clean(repr(vars(client)))
    with pytest.raises(TypeError):
        pickle.dumps(client)


FAULTS: list[tuple[dict[str, object], type[errors.LightSmsError]]] = [
    ({"http_500_rate": 1.0}, errors.AmbiguousError),
    ({"http_503_rate": 1.0}, errors.ThrottledError),
    ({"reset_rate": 1.0}, errors.AmbiguousError),
    ({"stall_rate": 1.0, "stall_seconds": 0.7}, errors.AmbiguousError),
    # refused for the clock, and the resync's timestamp.php fails too
    ({"clock_skew": 1000, "http_500_rate": 1.0, "endpoints": ["timestamp"]}, errors.ClockRejectedError),
]


@pytest.mark.parametrize(("faults", "cls"), FAULTS)
def test_exceptions_and_tracebacks_are_clean(
    make_client: ClientFactory, sim: Sim, faults: dict[str, object], cls: type[errors.LightSmsError]
) -> None:
    client = make_client(timeout=(1.0, 0.4))
    client.balance()
    sim.admin.faults(**faults, count=1)
    with pytest.raises(cls) as caught:
        client.send([PHONE_A], TEXT, sender=SENDER)
    rendered = "".join(traceback.format_exception(caught.value))
    assert_clean(rendered)
    assert_clean(repr(caught.value))
    assert TEXT not in rendered and PHONE_A not in rendered


def test_refused_signature_error_is_clean(make_client: ClientFactory, sim: Sim) -> None:
    client = make_client(api_key="another-secret-key")
    with pytest.raises(errors.InvalidLoginError) as caught:
        client.send([PHONE_A], TEXT, sender=SENDER)
    rendered = "".join(traceback.format_exception(caught.value))
    assert "another-secret-key" not in rendered
    assert not HEX32.search(rendered)


@pytest.mark.parametrize("call", [lambda c: c.balance(), lambda c: c.send([PHONE_A], TEXT, sender=SENDER)])
def test_debug_logs_of_urllib3_carry_no_signature_phone_or_text(
    make_client: ClientFactory, sim: Sim, caplog: pytest.LogCaptureFixture, call: Callable[[LightSmsClient], object]
) -> None:
    client = make_client()
    with caplog.at_level(logging.DEBUG):
        call(client)
    lines = [record.getMessage() for record in caplog.records]
    assert any("balance.php" in line or "send.php" in line for line in lines)  # urllib3 did log the request
    for line in lines:
        assert_clean(line)
        assert PHONE_A not in line and "Secret" not in line
