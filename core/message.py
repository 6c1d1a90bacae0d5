"""A message record as stored in its Redis hash: every value a string there, typed here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .states import OnUnknown, Priority, State


@dataclass(slots=True)
class Message:
    id: str
    phone: str
    text: str
    sender: str
    state: State
    priority: Priority = Priority.NORMAL
    on_unknown: OnUnknown = OnUnknown.HOLD
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    send_at: float | None = None
    valid_until: float | None = None
    sending_time: str | None = None  # provider-side schedule, "YYYY-MM-DD HH:MM" account time
    idempotency_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id_sms: str | None = None
    cost: str | None = None
    parts: int | None = None
    error_code: str | None = None
    error_meaning: str | None = None
    unreadable: str | None = None  # reply fields of an accepted phone that could not be read ("cost,count_sms")
    sent_at: float | None = None  # when LightSMS accepted it: the status schedule counts from here
    delivery_status: str | None = None  # LightSMS's own word for the last status change ("deliver", ...)
    status_at: float | None = None  # when that change was learnt
    status_note: str | None = None  # why its status is no longer asked while not final (deadline, no id_sms)
    lease: str | None = None
    inflight: bool = False
    # The one reply that confirms a STOP (consumers/keywords.py): sent although the number is opted out.
    opt_out_confirmation: bool = False
    # Written by this package's producer, which normalized the phone with phonenumbers: the worker
    # need not check it again (a record written by other means is checked before it is sent).
    phone_checked: bool = False

    def to_fields(self) -> dict[str, str]:
        """The hash fields; None values are left out."""
        raw: dict[str, object] = {
            "id": self.id,
            "phone": self.phone,
            "text": self.text,
            "sender": self.sender,
            "state": self.state.value,
            "priority": str(self.priority),
            "on_unknown": str(self.on_unknown),
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "send_at": self.send_at,
            "valid_until": self.valid_until,
            "sending_time": self.sending_time,
            "idempotency_key": self.idempotency_key,
            "metadata": json.dumps(self.metadata, separators=(",", ":")) if self.metadata else None,
            "opt_out_confirmation": "1" if self.opt_out_confirmation else None,
            "phone_checked": "1" if self.phone_checked else None,
        }
        return {name: str(value) for name, value in raw.items() if value is not None}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Message:
        def num(name: str) -> float | None:
            value = fields.get(name)
            return float(value) if value not in (None, "") else None

        def text(name: str) -> str | None:
            return fields.get(name) or None

        parts = fields.get("parts")
        return cls(
            id=fields["id"],
            phone=fields.get("phone", ""),
            text=fields.get("text", ""),
            sender=fields.get("sender", ""),
            state=State(fields.get("state", "QUEUED")),
            priority=Priority.read(fields.get("priority")),
            on_unknown=OnUnknown.read(fields.get("on_unknown")),
            attempts=int(fields.get("attempts") or 0),
            created_at=num("created_at") or 0.0,
            updated_at=num("updated_at") or 0.0,
            send_at=num("send_at"),
            valid_until=num("valid_until"),
            sending_time=text("sending_time"),
            idempotency_key=text("idempotency_key"),
            metadata=json.loads(fields["metadata"]) if fields.get("metadata") else {},
            id_sms=text("id_sms"),
            cost=text("cost"),
            parts=int(parts) if parts else None,
            error_code=text("error_code"),
            error_meaning=text("error_meaning"),
            unreadable=text("unreadable"),
            sent_at=num("sent_at"),
            delivery_status=text("delivery_status"),
            status_at=num("status_at"),
            status_note=text("status_note"),
            lease=text("lease"),
            inflight=fields.get("inflight") == "1",
            opt_out_confirmation=fields.get("opt_out_confirmation") == "1",
            phone_checked=fields.get("phone_checked") == "1",
        )

    def public(self) -> dict[str, Any]:
        """What `producers.get` shows: the record without the internal lease bookkeeping."""
        internal = ("lease", "inflight", "phone_checked")
        shown = {name: getattr(self, name) for name in self.__slots__ if name not in internal}
        shown["state"] = self.state.value
        shown["priority"] = str(self.priority)
        shown["on_unknown"] = str(self.on_unknown)
        return shown
