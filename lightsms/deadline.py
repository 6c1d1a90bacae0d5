"""A total deadline per HTTP request, enforced by one watchdog thread per process.

A read timeout bounds one socket read, not a reply: a server that trickles a byte every few
hundred milliseconds (status line, headers, body or TLS handshake) holds the calling thread for as
long as it likes. Here every request gets a Ticket with an absolute deadline; the connection it
runs on attaches its socket to the ticket (lightsms.transport's connection classes do, for new and
reused keep-alive connections alike), and when the deadline passes the watchdog shuts that socket
down (`shutdown(SHUT_RDWR)`), so whatever recv or send the request is blocked in returns at once
(EOF or an error) and the caller sees `ticket.fired`.

The watchdog holds a heap of (deadline, seq, ticket) and sleeps on a condition variable until the
earliest one; it is woken only when a new ticket is due earlier than it planned to wake. Arming and
disarming are a lock, a heap push and an `os.dup`/`os.close` each: no thread or timer per request.

The watchdog never touches the caller's socket object: a ticket keeps its own duplicate of the
socket's file descriptor (`os.dup`), closed only by `disarm`, under the same lock the watchdog fires
under. So a descriptor number the request's connection has closed and the kernel has handed to
another socket can never be shut down by mistake, and the duplicate stays valid when the socket
object is wrapped in TLS (which detaches the plain one) or closed early by urllib3.
"""

from __future__ import annotations

import heapq
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["Ticket", "Watchdog", "current_ticket", "watchdog"]

# Rebuild the heap when more than this many disarmed tickets wait in it (and they are the majority).
_COMPACT_AT = 1024


class Ticket:
    """One request's deadline: `at` (time.monotonic()), the socket it guards, what happened."""

    __slots__ = ("at", "write_by", "fd", "fired", "written", "live")

    def __init__(self, at: float, write_by: float = math.inf) -> None:
        self.at = at
        self.write_by = write_by  # time.monotonic() after which the request must not be written at all
        self.fd = -1  # our duplicate of the guarded socket's descriptor; -1 = none yet
        self.fired = False  # the deadline passed while armed: the socket was shut down
        self.written = False  # the request started to be written (it may have reached the server)
        self.live = True  # armed; False once disarmed


class Watchdog:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        # The request side takes the bare lock (a C-level context manager, cheaper than the
        # Condition's); the watchdog thread waits on the Condition built over it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Ticket]] = []
        self._seq = 0
        self._stale = 0  # disarmed tickets still in the heap
        self._wake_at = math.inf  # when the watchdog thread plans to look at the heap next
        self._thread: threading.Thread | None = None

    def _after_fork(self) -> None:
        # The thread did not survive the fork; the child's copies of the duplicates belong to
        # requests that live on in the parent only.
        for _, _, ticket in self._heap:
            if ticket.fd >= 0:
                with suppress(OSError):
                    os.close(ticket.fd)
        self._reset()

    # --- the request side --------------------------------------------------------------------------

    def arm(self, seconds: float, *, write_by: float = math.inf) -> Ticket:
        """A live ticket due `seconds` from now, not to be written after `write_by`; the watchdog
        fires it unless disarmed first."""
        ticket = Ticket(time.monotonic() + seconds, write_by)
        with self._lock:
            self._seq += 1
            heapq.heappush(self._heap, (ticket.at, self._seq, ticket))
            if self._thread is None:
                self._start()
            elif ticket.at < self._wake_at:
                self._cond.notify()
        return ticket

    def attach(self, ticket: Ticket, sock: socket.socket) -> None:
        """Guard `sock` (the one the ticket's request now uses) with the ticket's deadline. A ticket
        already past its deadline shuts the socket down at once."""
        fd = os.dup(sock.fileno())
        with self._lock:
            old, ticket.fd = ticket.fd, fd
            if ticket.fired:
                _shutdown(fd)
        if old >= 0:
            os.close(old)

    def begin_write(self, ticket: Ticket) -> bool:
        """Mark the request as (about to be) written; False when the deadline already fired, so
        nothing was written and nothing must be."""
        with self._lock:
            if ticket.fired:
                return False
            # Past its deadline but not yet fired (the watchdog thread has not run since), or past the
            # moment it could still be written: too late all the same, and fired, so that it reads as
            # never written (ConnectError), not as cut short.
            now = time.monotonic()
            if now >= ticket.at or now >= ticket.write_by:
                ticket.fired = True
                return False
            ticket.written = True
            return True

    def disarm(self, ticket: Ticket) -> bool:
        """Stop guarding (again: it is idempotent); True when the deadline fired (the reply may be
        cut short, and the socket is shut down)."""
        with self._lock:
            fd, ticket.fd = ticket.fd, -1
            if ticket.live:  # else disarmed before, or fired (and out of the heap)
                ticket.live = False
                self._stale += 1
                heap = self._heap
                # Disarmed tickets at the top go now, not when the watchdog reaches them; replies
                # mostly end in the order they started, so the heap stays about as long as the
                # number of requests in flight.
                while heap and not heap[0][2].live:
                    heapq.heappop(heap)
                    self._stale -= 1
                if self._stale > _COMPACT_AT and self._stale * 2 > len(heap):
                    self._heap = [entry for entry in heap if entry[2].live]
                    heapq.heapify(self._heap)
                    self._stale = 0
            fired = ticket.fired
        if fd >= 0:
            os.close(fd)
        return fired

    @contextmanager
    def guard(self, seconds: float, *, write_by: float = math.inf) -> Iterator[Ticket]:
        """A ticket that is the current one of this thread (see current_ticket) until the block ends."""
        ticket = self.arm(seconds, write_by=write_by)
        previous = getattr(_local, "ticket", None)
        _local.ticket = ticket
        try:
            yield ticket
        finally:
            _local.ticket = previous
            self.disarm(ticket)

    # --- the watchdog thread ----------------------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="lightsms-deadline-watchdog", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and heap[0][0] <= now:
                    _, _, ticket = heapq.heappop(heap)
                    if not ticket.live:
                        self._stale -= 1
                        continue
                    ticket.fired = True
                    ticket.live = False
                    if ticket.fd >= 0:
                        _shutdown(ticket.fd)
                self._wake_at = heap[0][0] if heap else math.inf
                cond.wait(None if not heap else self._wake_at - now)

    @property
    def pending(self) -> int:
        """Tickets in the heap, live or disarmed (for tests)."""
        with self._lock:
            return len(self._heap)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


def _shutdown(fd: int) -> None:
    """shutdown(SHUT_RDWR) on a descriptor we own, without taking it over."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more: nothing blocks on it
    finally:
        sock.detach()


_local = threading.local()


def current_ticket() -> Ticket | None:
    """The ticket of the request this thread is making, if it runs under Watchdog.guard."""
    return getattr(_local, "ticket", None)


watchdog = Watchdog()
