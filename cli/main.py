"""`lightsms-queue`: operate the queue from a shell.

    lightsms-queue stats                  (counters, and every account pause found in Redis)
    lightsms-queue get ID
    lightsms-queue dead list | retry [ID ...] | purge [ID ...]
    lightsms-queue unknown list | sent ID ... | failed ID ... | resend ID ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import redis

from core import keys
from core.message import Message
from core.pause import AccountCircuit, Pause
from core.settings import ConfigError, load_core_settings
from core.stats import Stats
from lightsms.phones import mask_phone
from producers.producer import Producer

from .operations import Operations


def _row(m: Message) -> str:
    reason = m.error_meaning or ""
    return f"{m.id}  {m.state.value:<8} {mask_phone(m.phone):<16} attempts={m.attempts}  {m.error_code or ''} {reason}"


def _pauses(client: redis.Redis) -> Iterator[tuple[str, Pause]]:
    """Every account pause in Redis (sms:pause:<login>), by login: the CLI holds no login of its own."""
    prefix = keys.pause("")
    for raw in sorted(client.scan_iter(match=keys.pause("*"), count=100)):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        login = key.removeprefix(prefix)
        pause = AccountCircuit(client, login=login).current()
        if pause is not None:  # it may have ended since the scan
            yield login, pause


def _describe(pause: Pause) -> str:
    until = datetime.fromtimestamp(pause.until, UTC).isoformat(timespec="seconds")
    code = f" (code {pause.code})" if pause.code is not None else ""
    return f"yes, until {until}: {pause.reason}{code}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightsms-queue", description="Operate the lightsms-queue store.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stats", help="counters: sent, failed by code, unknown, suppressed, dead, cost, parts")
    get = sub.add_parser("get", help="one message's state and details (JSON)")
    get.add_argument("message_id")
    dead = sub.add_parser("dead", help="the dead-letter list")
    dead.add_argument("action", choices=["list", "retry", "purge"])
    dead.add_argument("ids", nargs="*", help="message ids (default: all)")
    unknown = sub.add_parser("unknown", help="messages whose outcome is unknown: list, or settle after checking")
    unknown.add_argument("action", choices=["list", "sent", "failed", "resend"])
    unknown.add_argument("ids", nargs="*", help="message ids (required to settle: each is a decision)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        producer = Producer(load_core_settings())  # only REDIS_URL and the broker: no LightSMS credentials
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    ops = Operations(producer)
    if args.command == "stats":
        for name, value in Stats(producer.store.redis).read().items():
            print(f"{name:<24} {value}")
        pauses = list(_pauses(producer.store.redis))
        for login, pause in pauses:
            print(f"{'paused:' + login:<24} {_describe(pause)}")
        if not pauses:
            print(f"{'paused':<24} no")
    elif args.command == "get":
        found = producer.get(args.message_id)
        if found is None:
            print(f"no such message: {args.message_id}", file=sys.stderr)
            return 1
        found["phone"] = mask_phone(found["phone"])
        print(json.dumps(found, indent=2, default=str))
    elif args.command == "unknown" and args.action == "list":
        for m in ops.unknown():
            print(_row(m))
    elif args.command == "unknown":
        if not args.ids:
            print("name the message ids to settle", file=sys.stderr)
            return 2
        print(f"settled as {args.action}: {len(ops.settle_unknown(args.ids, outcome=args.action))}")
    elif args.action == "list":
        for m in ops.dead():
            print(_row(m))
    elif args.action == "retry":
        print(f"queued again: {len(ops.retry_dead(args.ids or None))}")
    else:
        purged, released = ops.purge_dead(args.ids or None)
        print(f"purged: {purged} (idempotency keys released: {released})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
