"""The HTTP side: a threaded HTTP/1.1 keep-alive server that writes each response in one send.

One write per response matters: headers and body in two writes meet the client's delayed ACK
(Nagle on our side) and cost ~40 ms per request. TCP_NODELAY is set as well.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from simulator import faults
from simulator.admin import handle_admin
from simulator.config import SimConfig
from simulator.endpoints import ENDPOINTS, handle
from simulator.render import render
from simulator.state import SimState

__all__ = ["Simulator", "run_in_thread"]

API_PREFIX = "/external/get/"
ADMIN_PREFIX = "/_sim/"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
MAX_LINE = 65537
MAX_HEADERS = 100


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimState) -> None:
        self.state = state
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, SimHandler)

    def close_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive connections so they end with the server."""
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lightsms-sim"
    server: SimHTTPServer
    fields: dict[str, str]  # request headers, names lower-cased
    raw_requestline: bytes

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with suppress(OSError):  # the connection was reset on purpose, or by the client
            super().finish()

    def parse_request(self) -> bool:
        """A lean stand-in for the stdlib's: its email-based header parser was half our time per request."""
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.close_connection = True
            self._reply(400, b"bad request line", TEXT_TYPE)
            return False
        self.command, self.path, self.request_version = words
        fields: dict[str, str] = {}
        while True:
            raw = self.rfile.readline(MAX_LINE)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(fields) >= MAX_HEADERS or len(raw) >= MAX_LINE:
                self.close_connection = True
                self._reply(431, b"request headers too large", TEXT_TYPE)
                return False
            name, _, value = raw.decode("iso-8859-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        self.fields = fields
        connection = fields.get("connection", "").lower()
        if self.request_version == "HTTP/1.0":
            self.close_connection = connection != "keep-alive"
        else:
            self.close_connection = connection == "close"
        return True

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_POST(self) -> None:
        self._guarded("POST")

    def _guarded(self, method: str) -> None:
        try:
            self._route(method)
        except OSError:  # the client went away (e.g. gave up on a stall): nobody to answer
            self.close_connection = True
        except Exception:  # a simulator bug: answer 500 rather than hang the client
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._reply(500, b"simulator error", TEXT_TYPE)

    def _route(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        # Read any body whatever the route: left in the stream, it would be read as the next request.
        length = int(self.fields.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.startswith(ADMIN_PREFIX):
            status, payload = handle_admin(method, path[len(ADMIN_PREFIX) :], body, self.server.state)
            self._reply(status, json.dumps(payload).encode(), JSON_TYPE)
            return
        is_api = path.startswith(API_PREFIX) and path.endswith(".php")
        name = path[len(API_PREFIX) : -len(".php")] if is_api else ""
        if name not in ENDPOINTS and name != "timestamp":
            self._reply(404, b"not found", TEXT_TYPE)
        elif method != "GET":
            self._reply(405, b"method not allowed", TEXT_TYPE, ("Allow", "GET"))
        else:
            self._api(name, query)

    def _api(self, name: str, query: str) -> None:
        arrived = time.time()
        state = self.server.state
        # A repeated parameter keeps its last value, as PHP does.
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        phones = len([p for p in params.get("phone", "").split(",") if p.strip()])
        if name != "timestamp" and not state.admit():
            state.record(arrived=arrived, endpoint=name, outcome="throttled", phones=phones)
            self._reply(429, b"Too Many Requests", TEXT_TYPE, ("Retry-After", "1"))
            return
        decision = faults.decide(state, name)
        if decision.latency and self.server.stopping.wait(decision.latency):
            return
        if decision.kind in (faults.HTTP_500, faults.HTTP_503, faults.HTTP_429):
            status = int(decision.kind.split(":")[1])
            state.record(arrived=arrived, endpoint=name, outcome=decision.kind, phones=phones)
            self._reply(status, HTTPStatus(status).phrase.encode(), TEXT_TYPE)
            return
        if name == "timestamp":
            outcome, content_type, body = "ok", TEXT_TYPE, str(int(state.now())).encode()
        else:
            handled = handle(name, params, state)
            outcome, phones = handled.outcome, handled.phones
            xml = params.get("return") == "xml"
            content_type, body = render(handled.result, xml=xml, variants=state.faults.variants)
        if decision.kind == faults.RESET:
            state.record(arrived=arrived, endpoint=name, outcome="reset", phones=phones)
            self._reset_connection()
            return
        status = 200
        if decision.reply is not None:  # processed as usual above; answered with the injected reply
            status, body, content_type = decision.reply.status, decision.reply.body, decision.reply.content_type
            outcome = f"reply:{outcome}"
        if decision.kind == faults.STALL:
            state.record(arrived=arrived, endpoint=name, outcome="stall", phones=phones)
            if self.server.stopping.wait(decision.stall_seconds):
                return
        elif decision.kind == faults.TRICKLE:
            state.record(arrived=arrived, endpoint=name, outcome="trickle", phones=phones)
            self._trickle(self._response_bytes(status, body, content_type), decision.trickle_interval)
            return
        else:
            state.record(arrived=arrived, endpoint=name, outcome=outcome, phones=phones)
        self._reply(status, body, content_type)
        if state.config.verbose:
            sys.stderr.write(f"lightsms-sim {name} -> {outcome}\n")

    def _reply(self, status: int, body: bytes, content_type: str, *extra: tuple[str, str]) -> None:
        self.wfile.write(self._response_bytes(status, body, content_type, *extra))  # one write: see above

    def _response_bytes(self, status: int, body: bytes, content_type: str, *extra: tuple[str, str]) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_phrase(status)}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{key}: {value}" for key, value in extra]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body

    def _trickle(self, reply: bytes, interval: float) -> None:
        """Write `reply` one byte at a time, `interval` seconds apart; stop early (and close) when
        the client hangs up or the server stops."""
        for index in range(len(reply)):
            try:
                self.connection.sendall(reply[index : index + 1])
            except OSError:  # the client hung up (EPIPE, ECONNRESET)
                self.close_connection = True
                return
            if index + 1 < len(reply) and self.server.stopping.wait(interval):
                self.close_connection = True
                return

    def _reset_connection(self) -> None:
        """Abort with a TCP RST: linger 0 and close, so the client sees a reset, not a clean EOF."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the makefile holds a reference; the fd closes only when both are gone
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if self.server.state.config.verbose:
            # The request line carries the signature, phones and text: log only the path.
            sys.stderr.write(f"lightsms-sim {self.address_string()} {self.command} "
                             f"{self.path.partition('?')[0]} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # we never call send_response; _api logs the outcome instead


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # an injected reply_status with no standard phrase
        return "Unknown"


class Simulator:
    """A LightSMS simulator bound to host:port (port 0 picks a free one)."""

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = SimState(config or SimConfig())
        self.httpd = SimHTTPServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self.httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.05)

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.serve_forever, name="lightsms-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()
        self.httpd.close_connections()


@contextmanager
def run_in_thread(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Simulator]:
    sim = Simulator(config, host=host, port=port).start()
    try:
        yield sim
    finally:
        sim.stop()
