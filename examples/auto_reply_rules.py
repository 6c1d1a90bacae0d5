"""An auto-reply rule table: the first rule whose keyword or pattern matches the text answers it.
`lightsms-queue consume --keywords examples.auto_reply_rules:handle` (STOP, START and HELP are the
keyword router's; put your own table in RULES).

Like the router's replies: never to short codes or alphanumeric senders, at most one reply per rule
per number per LIGHTSMS_AUTO_REPLY_PERIOD, none to a text that is one of our replies coming back,
and a redelivered event sends nothing more (the idempotency key is derived from the event id).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from consumers.autoreply import AutoReplyGate, can_reply
from core.contract import event_id
from core.settings import load_core_settings
from producers import OptedOutError, Producer

log = logging.getLogger("examples.auto_reply_rules")


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    reply: str

    @classmethod
    def keyword(cls, word: str, reply: str) -> Rule:
        """The whole text is this word (any case, surrounding spaces ignored)."""
        return cls(word.lower(), re.compile(rf"\A\s*{re.escape(word)}\s*\Z", re.IGNORECASE), reply)

    @classmethod
    def regex(cls, name: str, pattern: str, reply: str) -> Rule:
        """The pattern is found anywhere in the text (any case)."""
        return cls(name, re.compile(pattern, re.IGNORECASE | re.DOTALL), reply)

    def matches(self, text: str) -> bool:
        return self.pattern.search(text) is not None


RULES: tuple[Rule, ...] = (
    Rule.keyword("HOURS", "We are open Monday to Friday, 9:00-18:00."),
    Rule.keyword("BALANCE", "See your balance at example.com/account."),
    Rule.regex("prices", r"\b(price|prices|cost)\b", "Our prices: example.com/prices"),
    Rule.regex("address", r"\bwhere\b.*\b(shop|store|office)\b", "Find us at Gedimino pr. 1, Vilnius."),
)


class AutoReplyRules:
    def __init__(
        self, producer: Producer, client: redis.Redis, *, rules: Sequence[Rule] = RULES, period: float = 3600.0
    ) -> None:
        self.producer = producer
        self.rules = tuple(rules)
        self.gate = AutoReplyGate(client, period=period)
        self.own_replies = frozenset(rule.reply.strip().casefold() for rule in self.rules)

    def match(self, text: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(text)), None)

    def __call__(self, event: dict[str, Any]) -> str | None:
        """The name of the rule that answered, or None."""
        eid = event_id(event)
        text, sender = event.get("text"), event.get("sender")
        if not isinstance(text, str) or text.strip().casefold() in self.own_replies:
            return None  # one of our replies coming back: answering it could start a loop
        rule = self.match(text)
        if rule is None or not can_reply(sender) or not self.gate.admit(str(sender), f"rule:{rule.name}", eid):
            return None
        try:
            self.producer.send(str(sender), rule.reply, idempotency_key=f"rule-reply:{eid}")
        except OptedOutError:
            log.info("rule %s matched, but the sender opted out: no reply", rule.name)
            return None
        return rule.name


_handler: AutoReplyRules | None = None


def handle(event: dict[str, Any]) -> str | None:
    global _handler
    if _handler is None:  # built on first use, from REDIS_URL and the other core settings
        settings = load_core_settings()
        producer = Producer(settings)
        _handler = AutoReplyRules(producer, producer.store.redis, period=settings.lightsms_auto_reply_period)
    return _handler(event)
