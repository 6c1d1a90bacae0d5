"""The upkeep consumer's handling of one tick, as pure logic: an odd tick is dropped with a log line
and never ends upkeep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from worker.upkeep import UpkeepConsumer


class Tick:
    def __init__(self, headers: dict[str, Any]) -> None:
        self.headers = headers
        self.acked = False

    def ack(self) -> None:
        self.acked = True


class App:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.tasks = {"lightsms.sweep": lambda *a, **k: self.calls.append((a, k))}


def consumer() -> tuple[UpkeepConsumer, App]:
    app = App()
    return UpkeepConsumer(app, connection=None), app  # type: ignore[arg-type]


def test_a_tick_runs_its_task_with_its_arguments():
    upkeep, app = consumer()
    tick = Tick({"task": "lightsms.sweep"})
    upkeep.on_tick([[1], {"x": 2}, {}], tick)  # type: ignore[arg-type]
    assert tick.acked and app.calls == [((1,), {"x": 2})]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ([[1], [1], {}], {"task": "lightsms.sweep"}),  # kwargs that are not a mapping
        ("junk", {"task": "lightsms.sweep"}),
        (None, {"task": "lightsms.sweep", "expires": "2020-01-01T00:00:00"}),  # naive, and long past
        ([[], {}, {}], {"task": "lightsms.unknown"}),
        ([[], {}, {}], {"task": ["not", "a", "name"]}),
        ([[], {}, {}], {}),
    ],
)
def test_an_odd_tick_is_acked_and_dropped_without_raising(body, headers):
    upkeep, app = consumer()
    tick = Tick(headers)
    upkeep.on_tick(body, tick)  # type: ignore[arg-type]
    assert tick.acked
    assert len(app.calls) <= 1


def test_an_expired_tick_is_skipped_and_a_fresh_one_runs():
    upkeep, app = consumer()
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    future = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    upkeep.on_tick([[], {}, {}], Tick({"task": "lightsms.sweep", "expires": past}))  # type: ignore[arg-type]
    assert app.calls == []
    upkeep.on_tick([[], {}, {}], Tick({"task": "lightsms.sweep", "expires": future}))  # type: ignore[arg-type]
    assert app.calls == [((), {})]


def test_a_task_that_fails_does_not_escape():
    upkeep, app = consumer()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("redis went away")

    app.tasks["lightsms.sweep"] = broken
    upkeep.on_tick([[], {}, {}], Tick({"task": "lightsms.sweep"}))  # type: ignore[arg-type]
