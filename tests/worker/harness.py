"""A BatchSender on a real Redis with a scripted LightSMS client: the send path's logic without
processes. Used by test_send_edges.py and test_outcome_table.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from decimal import Decimal
from typing import Any

import redis

from core.arrival_window import ArrivalWindow
from core.message import Message
from core.pause import AccountCircuit
from core.settings import Settings
from core.states import State
from core.stats import Stats
from core.store import Store
from lightsms.codes import Outcome
from lightsms.models import PhoneResult
from worker.limiter import RateLimiter
from worker.sending import BatchSender

PHONES = ["37060000001", "37060000002", "37060000003"]


class ScriptedClient:
    """Answers send() with whatever the test scripts: results, or an exception to raise."""

    def __init__(self, answer: Callable[[Sequence[str]], list[PhoneResult]], window: ArrivalWindow | None = None):
        self.answer = answer
        self.window = window  # entered around each send, as the real client does
        self.write_bys: list[float | None] = []  # what it gave each send: write no later than this
        self.calls: list[list[str]] = []
        self.calls_in_order: list[str] = []  # "ready" and "send", as they came

    def ready(self) -> None:
        self.calls_in_order.append("ready")

    def send(self, phones: Sequence[str], text: str, *, sender: str, sending_time: str | None = None,
             phones_checked: bool = False):  # fmt: skip
        self.calls.append(list(phones))
        self.calls_in_order.append("send")
        with self.window.admitted("send.php") if self.window else nullcontext() as write_by:
            self.write_bys.append(write_by)
            return self.answer(phones)


def accepted(phone: str, *, cost: Decimal | None = Decimal("0.0144"), parts: int | None = 1,
             unreadable: tuple[str, ...] = ()) -> PhoneResult:  # fmt: skip
    return PhoneResult(phone, 0, "accepted", Outcome.OK, id_sms=f"9{phone}", cost=cost, parts=parts,
                       unreadable=unreadable)  # fmt: skip


class Harness:
    def __init__(self, client: redis.Redis, answer: Callable[[Sequence[str]], list[PhoneResult]], *,
                 window: ArrivalWindow | None = None, **settings):  # fmt: skip
        defaults: dict[str, Any] = {"lightsms_base_url": "http://127.0.0.1:9/", "lightsms_retry_window": 0.5}
        self.settings = Settings(**{**defaults, **settings})
        self.store = Store(client, record_ttl=3600)
        self.stats = Stats(client)
        self.circuit = AccountCircuit(client, login="demo")
        self.limiter = RateLimiter(client, login="demo", rate=1000)
        self.client = ScriptedClient(answer, window)
        self.requeued: list[tuple[str, str]] = []
        self.sender = BatchSender(
            settings=self.settings, store=self.store, client=self.client, limiter=self.limiter,
            circuit=self.circuit, requeue=self.requeued.extend, sleep=lambda _: None, window=window,
        )  # fmt: skip

    def enqueue(self, phones: Sequence[str] = PHONES, *, prefix: str = "m", **fields) -> list[str]:
        now = time.time()
        messages = [Message(id=f"{prefix}{i}", phone=p, text="hi", sender="LightSMS", state=State.QUEUED,
                            created_at=now, updated_at=now, **fields) for i, p in enumerate(phones)]  # fmt: skip
        self.store.create(messages)
        return [m.id for m in messages]

    def states(self, ids: list[str]) -> list[State]:
        return [m.state for m in self.store.get_many(ids) if m is not None]


def raising(exc: BaseException) -> Callable[[Sequence[str]], list[PhoneResult]]:
    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        raise exc

    return answer
