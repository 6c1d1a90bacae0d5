"""Enqueue SMS from any Python service: validate, store durably, then publish message ids."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import Celery

from core.message import Message
from core.redis_client import FAIL_FAST, store_client
from core.settings import CoreSettings, get_core_settings
from core.states import CANCELLABLE, State
from core.store import Move, RecipientOptedOut, Store, TasksNotPushed

from .celery_client import Dispatcher, make_producer_app
from .validation import OptedOutError, Options, check_options, check_phone, check_phones

log = logging.getLogger("lightsms_queue.producer")


class Producer:
    """Explicitly configured producer; the module-level functions use one built from the environment.

    It needs only the core settings (a full Settings will do: it is a subclass): no LightSMS credentials.
    """

    def __init__(
        self,
        settings: CoreSettings | None = None,
        *,
        redis_client: redis.Redis | None = None,
        celery_app: Celery | None = None,
    ) -> None:
        self.settings = settings or get_core_settings()
        client = redis_client or store_client(self.settings, **FAIL_FAST)
        self.store = Store(client, record_ttl=int(self.settings.lightsms_record_ttl_days * 86400))
        self.dispatcher = Dispatcher(
            celery_app or make_producer_app(self.settings), batch_size=self.settings.lightsms_batch_size
        )

    def send(
        self,
        phone: str,
        text: str,
        *,
        sender: str | None = None,
        send_at: datetime | float | None = None,
        idempotency_key: str | None = None,
        valid_for: timedelta | float | None = None,
        on_unknown: str = "hold",
        priority: str = "normal",
        metadata: Mapping[str, Any] | None = None,
        provider_schedule: bool = False,
        opt_out_confirmation: bool = False,
    ) -> str:
        """Enqueue one SMS; returns its message id (the same id again for a repeated idempotency key).

        send_many of one phone, except that the caller's idempotency key is used as it is and errors
        name the field `phone`.

        `opt_out_confirmation=True` is for exactly one message: the reply confirming a STOP (the
        keyword router sends it). It is sent although the number is opted out, because the opt-out
        is recorded as it is enqueued; the record says so, and the worker honours it too.
        """
        return self._enqueue(
            phone, text, one=True, sender=sender, send_at=send_at, idempotency_key=idempotency_key,
            valid_for=valid_for, on_unknown=on_unknown, priority=priority, metadata=metadata,
            provider_schedule=provider_schedule, opt_out_confirmation=opt_out_confirmation,
        )[0]  # fmt: skip

    def send_many(
        self,
        phones: Sequence[str],
        text: str,
        *,
        sender: str | None = None,
        send_at: datetime | float | None = None,
        idempotency_key: str | None = None,
        valid_for: timedelta | float | None = None,
        on_unknown: str = "hold",
        priority: str = "normal",
        metadata: Mapping[str, Any] | None = None,
        provider_schedule: bool = False,
    ) -> list[str]:
        """Enqueue one text to many recipients, all or nothing; ids in the order of `phones`.

        With an idempotency key, each recipient gets a key of its own derived from it (see _key_for).
        """
        return self._enqueue(
            phones, text, one=False, sender=sender, send_at=send_at, idempotency_key=idempotency_key,
            valid_for=valid_for, on_unknown=on_unknown, priority=priority, metadata=metadata,
            provider_schedule=provider_schedule,
        )  # fmt: skip

    def get(self, message_id: str) -> dict[str, Any] | None:
        """The message's state and details, or None when there is no such message (or it expired)."""
        message = self.store.get(message_id)
        return message.public() if message else None

    def cancel(self, message_id: str) -> bool:
        """Cancel a message that is not yet sending; False when it is too late (or unknown)."""
        moved, _ = self.store.move(
            Move(message_id, tuple(CANCELLABLE), State.CANCELLED, ttl=self.store.record_ttl)
        )
        return moved

    def enqueue_ids(self, message_ids: list[str], priority: str) -> None:
        """Publish send tasks for messages already stored as QUEUED."""
        self.dispatcher.enqueue(message_ids, priority)
        self.store.touch_queued(message_ids, priority, now=time.time())

    def requeue(self, items: Iterable[tuple[str, str]]) -> None:
        """Publish send tasks for stored QUEUED messages given as (id, priority), queue by queue."""
        by_priority: dict[str, list[str]] = defaultdict(list)
        for message_id, priority in items:
            by_priority[priority].append(message_id)
        for priority, ids in by_priority.items():
            self.enqueue_ids(ids, priority)

    def _enqueue(
        self,
        recipients: str | Sequence[str],
        text: str,
        *,
        one: bool,
        sender: str | None,
        send_at: datetime | float | None,
        idempotency_key: str | None,
        valid_for: timedelta | float | None,
        on_unknown: str,
        priority: str,
        metadata: Mapping[str, Any] | None,
        provider_schedule: bool,
        opt_out_confirmation: bool = False,
    ) -> list[str]:
        """The one store-and-enqueue path. `one`: `recipients` is send's single phone (field `phone`,
        the caller's idempotency key as it is); else send_many's list (`phones[i]`, a key per phone)."""
        now = time.time()
        options = check_options(
            self.settings, now=now, text=text, sender=sender, send_at=send_at,
            idempotency_key=idempotency_key, valid_for=valid_for, on_unknown=on_unknown,
            priority=priority, metadata=metadata, provider_schedule=provider_schedule,
            opt_out_confirmation=opt_out_confirmation,
        )  # fmt: skip
        region = self.settings.lightsms_default_region
        if one:
            normalized, fields = [check_phone(recipients, default_region=region)], ["phone"]
        else:
            normalized = check_phones(recipients, default_region=region)
            fields = [f"phones[{i}]" for i in range(len(normalized))]
        try:
            # The opt-out list is checked by the same script that stores them: one round trip.
            return self._store_and_enqueue(normalized, options, now=now, key_per_phone=not one)
        except RecipientOptedOut as exc:
            raise OptedOutError(fields[exc.index], "the recipient opted out of messages") from None

    def _store_and_enqueue(
        self, phones: list[str], options: Options, *, now: float, key_per_phone: bool
    ) -> list[str]:
        state = State.SCHEDULED if options.send_at else State.QUEUED
        messages = [
            Message(
                id=uuid.uuid4().hex,
                phone=phone,
                text=options.text,
                sender=options.sender,
                state=state,
                priority=options.priority,
                on_unknown=options.on_unknown,
                created_at=now,
                updated_at=now,
                send_at=options.send_at,
                sending_time=options.sending_time,
                valid_until=options.valid_until,
                idempotency_key=_key_for(options.idempotency_key, phone, key_per_phone),
                metadata=options.metadata,
                opt_out_confirmation=options.opt_out_confirmation,
                phone_checked=True,  # normalized by check_phone on the way in
            )
            for phone in phones
        ]
        tasks = self._tasks_to_store([m.id for m in messages], options.priority) if state is State.QUEUED else None
        try:
            results = self.store.create(messages, refuse_opted_out=True, publish=tasks or ())
        except TasksNotPushed as stored:
            results, tasks = stored.results, None  # published below, as on any other broker
        fresh = [message_id for message_id, created in results if created]
        if fresh and state is State.QUEUED and tasks is None:
            try:
                self.dispatcher.enqueue(fresh, options.priority)
            except Exception as exc:  # noqa: BLE001 - any broker failure: the records are safe already
                # Raising now would invite the caller to retry and send twice. The messages are stored
                # QUEUED, and the sweeper gives them a task after LIGHTSMS_REQUEUE_AFTER seconds.
                log.warning("stored %d message(s) but could not publish their task (%s): the sweeper will",
                            len(fresh), type(exc).__name__)  # fmt: skip
        return [message_id for message_id, _ in results]

    def _tasks_to_store(self, message_ids: list[str], priority: str) -> list[tuple[str, str]] | None:
        """The send tasks, for the store's script to push with the records when the broker is the
        store's own Redis (one round trip, and never a record without its task); None: publish after."""
        try:
            return self.dispatcher.recorded(message_ids, priority, store=self.store.redis)
        except Exception as exc:  # noqa: BLE001 - the records come first; publishing after is the fallback
            log.debug("send tasks not recorded (%s): published after the records", type(exc).__name__)
            return None


def _key_for(key: str | None, phone: str, per_phone: bool) -> str | None:
    """The idempotency key stored for one recipient (and shown by `lightsms-queue get`).

    `send` keeps the caller's key as it is. `send_many` gives each recipient a key of its own,
    `<key>:<first 32 hex digits of sha256(key + "\\0" + phone)>`, so that no phone number is written
    in clear into a Redis key name or the record's `idempotency_key` field. The same key and the same
    (normalised) phone always give the same recipient key: a repeated `send_many` returns the same ids.
    This hides the number from a casual reader, not from someone who knows the key and tries every
    number.
    """
    if key is None:
        return None
    if not per_phone:
        return key
    digest = hashlib.sha256(f"{key}\0{phone}".encode()).hexdigest()[:32]
    return f"{key}:{digest}"
