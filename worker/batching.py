"""Which messages share one send.php call: same text, sender and sendingTime, distinct phones."""

from __future__ import annotations

from collections.abc import Iterable

from core.message import Message


def plan_batches(messages: Iterable[Message], *, size: int) -> list[list[Message]]:
    """Batches of at most `size`, in first-seen order; a phone never appears twice in one batch
    (LightSMS answers per phone, so two messages to one number could not be told apart)."""
    batches: dict[tuple[str, str, str | None], list[tuple[list[Message], set[str]]]] = {}
    order: list[list[Message]] = []
    for message in messages:
        chunks = batches.setdefault((message.text, message.sender, message.sending_time), [])
        for chunk, phones in chunks:
            if len(chunk) < size and message.phone not in phones:
                chunk.append(message)
                phones.add(message.phone)
                break
        else:
            chunk = [message]
            chunks.append((chunk, {message.phone}))
            order.append(chunk)
    return order
