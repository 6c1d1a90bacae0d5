"""ServerClock logic with fake clocks and a fake timestamp.php: no time passes, no network."""

from __future__ import annotations

import threading

import pytest

from lightsms.clock import ServerClock
from lightsms.errors import ConnectError


class FakeTime:
    def __init__(self, wall: float = 1_000_000.0) -> None:
        self.wall_now = wall
        self.mono_now = 50.0

    def wall(self) -> float:
        return self.wall_now

    def monotonic(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds


class FakeServer:
    """timestamp.php: `skew` seconds ahead of the fake wall clock; can be made to fail."""

    def __init__(self, clock: FakeTime, skew: int = 0) -> None:
        self.clock = clock
        self.skew = skew
        self.calls = 0
        self.failing = False

    def __call__(self) -> int:
        self.calls += 1
        if self.failing:
            raise ConnectError("timestamp.php: connection refused")
        return int(self.clock.wall_now) + self.skew


def now(clock: ServerClock) -> int:
    return clock.stamp()[0]


def make(skew: int = 0, *, interval: float = 600.0) -> tuple[ServerClock, FakeServer, FakeTime]:
    fake = FakeTime()
    server = FakeServer(fake, skew)
    return ServerClock(server, refresh_interval=interval, monotonic=fake.monotonic, wall=fake.wall), server, fake


def test_first_now_fetches_and_applies_the_offset() -> None:
    clock, server, fake = make(skew=120)
    assert server.calls == 0  # lazy: nothing fetched at construction
    assert now(clock) == int(fake.wall_now) + 120
    assert server.calls == 1


def test_many_requests_share_one_fetch_until_the_interval() -> None:
    clock, server, fake = make(skew=-30, interval=600)
    for _ in range(100):
        fake.advance(5)  # 500 s in total
        assert now(clock) == int(fake.wall_now) - 30
    assert server.calls == 1  # fetched at the first call, 495 s ago
    fake.advance(104)
    now(clock)
    assert server.calls == 1
    fake.advance(1)
    now(clock)
    assert server.calls == 2


def test_offset_follows_the_server_after_a_refresh() -> None:
    clock, server, fake = make(skew=0, interval=10)
    assert now(clock) == int(fake.wall_now)
    server.skew = 120
    assert now(clock) == int(fake.wall_now)  # not due yet: old offset
    fake.advance(10)
    assert now(clock) == int(fake.wall_now) + 120


def test_expire_forces_a_refresh_on_the_next_stamp() -> None:
    clock, server, fake = make(skew=0)
    now(clock)
    server.skew = 120
    clock.expire()
    assert server.calls == 1  # expire itself does not fetch
    assert now(clock) == int(fake.wall_now) + 120
    assert server.calls == 2


def test_failing_first_refresh_raises() -> None:
    clock, server, _ = make()
    server.failing = True
    with pytest.raises(ConnectError):
        now(clock)
    with pytest.raises(ConnectError):  # no offset to fall back on: each use asks again
        now(clock)
    assert server.calls == 2


def test_failing_later_refresh_keeps_the_old_offset_and_waits_an_interval() -> None:
    clock, server, fake = make(skew=60, interval=600)
    now(clock)
    server.failing = True
    fake.advance(600)
    assert now(clock) == int(fake.wall_now) + 60
    assert server.calls == 2
    fake.advance(1)
    now(clock)
    assert server.calls == 2  # no fetch storm while timestamp.php is down
    server.failing = False
    server.skew = 90
    fake.advance(600)
    assert now(clock) == int(fake.wall_now) + 90


def test_offset_is_centred_on_the_round_trip() -> None:
    fake = FakeTime(wall=1000.0)

    def slow_fetch() -> int:
        fake.advance(2.0)  # the reply took 2 s: the server read its clock mid-way
        return 1121

    clock = ServerClock(slow_fetch, monotonic=fake.monotonic, wall=fake.wall)
    clock.resync()
    # offset 1121.5 - 1001 (mid-request): not 1121 - 1000 nor 1121 - 1002
    assert now(clock) == int(fake.wall_now + 120.5) == 1122


def test_concurrent_first_use_fetches_once() -> None:
    fake = FakeTime()
    calls = 0
    entered = threading.Event()
    release = threading.Event()

    def blocking_fetch() -> int:
        nonlocal calls
        calls += 1
        entered.set()
        assert release.wait(5)
        return int(fake.wall_now)

    clock = ServerClock(blocking_fetch, monotonic=fake.monotonic, wall=fake.wall)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(now(clock))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert entered.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert calls == 1
    assert results == [int(fake.wall_now)] * 8


def test_stamp_reads_time_and_generation_together() -> None:
    clock, server, fake = make(skew=5)
    assert clock.stamp() == (int(fake.wall_now) + 5, 1)
    clock.expire()
    assert clock.stamp()[1] == 2
    assert server.calls == 2


def test_resync_skips_when_another_caller_already_refreshed() -> None:
    clock, server, fake = make(skew=0)
    _, signed_with = clock.stamp()
    server.skew = 120
    clock.resync(signed_with=signed_with)  # the first refused request refreshes
    clock.resync(signed_with=signed_with)  # a second one, refused with the same old offset, does not
    assert server.calls == 2
    assert clock.stamp() == (int(fake.wall_now) + 120, 2)
    clock.resync(signed_with=2)  # refused with the newest offset: ask again
    assert server.calls == 3


def test_resync_raises_when_the_fetch_fails() -> None:
    clock, server, fake = make(skew=7)
    now(clock)
    server.failing = True
    with pytest.raises(ConnectError):
        clock.resync(signed_with=1)
    assert now(clock) == int(fake.wall_now) + 7


def test_now_is_our_clock_plus_the_offset_with_its_fraction() -> None:
    clock, server, fake = make(skew=120)
    fake.wall_now = 1_000_000.25
    # timestamp.php said int(wall) + 120; its second is centred (+0.5): the offset is 120.25.
    assert clock.now() == pytest.approx(fake.wall_now + 120.25)
    fake.advance(0.5)
    assert clock.now() == pytest.approx(fake.wall_now + 120.25)
    assert server.calls == 1
