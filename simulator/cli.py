"""`lightsms-sim`: run the simulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from types import FrameType

from simulator.config import DEFAULT_SENDERS, SimConfig
from simulator.server import Simulator

__all__ = ["build_config", "main", "parse_args"]


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _sender(text: str) -> tuple[str, str]:
    name, _, state = text.partition(":")
    state = state or "completed"
    if not name or state not in ("completed", "pending"):
        raise argparse.ArgumentTypeError("sender must be NAME or NAME:completed or NAME:pending")
    return name, state


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lightsms-sim", description="A LightSMS API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--login", default="demo")
    parser.add_argument("--api-key", default="demo-key")
    parser.add_argument("--balance", type=_decimal, default=Decimal("100"))
    parser.add_argument("--price", type=_decimal, default=Decimal("0.0144"))
    parser.add_argument(
        "--sender", type=_sender, action="append", default=[],
        help="NAME[:completed|pending], repeatable; added to the defaults LightSMS and Pending",
    )
    parser.add_argument("--timezone", default="Europe/Vilnius")
    parser.add_argument("--delivery-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault lottery")
    parser.add_argument("--verbose", action="store_true", help="one stderr line per request")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SimConfig:
    senders = dict(DEFAULT_SENDERS)
    senders.update(dict(args.sender))
    return SimConfig(
        login=args.login,
        api_key=args.api_key,
        balance=args.balance,
        price=args.price,
        senders=senders,
        timezone=args.timezone,
        delivery_seconds=args.delivery_seconds,
        seed=args.seed,
        verbose=args.verbose,
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _freeze_the_heap() -> None:
    """What the simulator process holds at start, and after each reset, is kept out of Python's full
    collections: they stop every handler thread (20 ms and more as the records grew), and a request
    that arrives meanwhile is stamped that much late, noise in what the limiter's bench measures.
    Only for the simulator's own process (an in-thread simulator shares its test's heap)."""
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sim = Simulator(build_config(args), host=args.host, port=args.port)
    except (OSError, ValueError, KeyError) as exc:  # KeyError: unknown timezone
        print(f"lightsms-sim: cannot start: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sim.state.on_reset = _freeze_the_heap
    _freeze_the_heap()
    print(f"lightsms-sim listening on {sim.url}", flush=True)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.httpd.stopping.set()
        sim.httpd.server_close()
        sim.httpd.close_connections()
    return 0
