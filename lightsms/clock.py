"""LightSMS's clock, as an offset from ours.

A signed request is valid for 10 seconds of *server* time, so a host whose clock drifts would have
every request refused. timestamp.php is asked once per refresh (every `refresh_interval` seconds, or
after expire() or resync()), never once per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import ProviderUnavailableError

__all__ = ["ServerClock"]


class ServerClock:
    def __init__(
        self,
        fetch: Callable[[], int],
        *,
        refresh_interval: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._refresh_interval = refresh_interval
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._offset: float | None = None
        self._refreshed_at: float | None = None  # monotonic time of the last attempt
        self._stale = True
        self._generation = 0  # successful refreshes so far

    def stamp(self) -> tuple[int, int]:
        """(server time in Unix seconds, generation) read together, for a later
        resync(signed_with=generation); the generation counts successful refreshes. Refreshes when
        due; a failed refresh keeps the old offset (and waits another interval) if there is one, and
        raises otherwise."""
        with self._lock:
            if self._due():
                try:
                    self._refresh_locked()
                except Exception as error:
                    # Not LightSMS's API answering (a page, a 404) is no clock hiccup: say so now.
                    if self._offset is None or isinstance(error, ProviderUnavailableError):
                        raise
                    # Keep signing with the old offset; try again after the next interval.
                    self._refreshed_at = self._monotonic()
                    self._stale = False
            assert self._offset is not None
            return int(self._wall() + self._offset), self._generation

    def now(self) -> float:
        """LightSMS's current time in Unix seconds (with a fraction), our clock plus the offset;
        refreshes like stamp(), and raises like it when there is no offset yet."""
        self.stamp()
        with self._lock:
            assert self._offset is not None
            return self._wall() + self._offset

    def expire(self) -> None:
        """Ask timestamp.php again before the next request (after a reply that was not LightSMS's)."""
        with self._lock:
            self._stale = True

    def resync(self, *, signed_with: int | None = None) -> None:
        """The server refused a timestamp made at generation `signed_with`: refresh now, unless another
        thread already did since (many requests refused at once cost one timestamp.php call).
        Raises when the fetch fails."""
        with self._lock:
            if signed_with is not None and self._generation != signed_with and not self._stale:
                return
            self._refresh_locked()

    def _due(self) -> bool:
        if self._stale or self._offset is None or self._refreshed_at is None:
            return True
        return self._monotonic() - self._refreshed_at >= self._refresh_interval

    def _refresh_locked(self) -> None:
        before = self._wall()
        server = self._fetch()
        after = self._wall()
        # The server truncates to whole seconds (+0.5 centres it); the reply left it mid-request.
        self._offset = (server + 0.5) - (before + after) / 2
        self._refreshed_at = self._monotonic()
        self._stale = False
        self._generation += 1
