"""Running handlers for inbound SMS (`sms.inbound`) and delivery-status (`sms.status`) events.

    import consumers

    @consumers.handler(queue="sms.status", max_retries=5)
    def on_status(event): ...

    consumers.run(on_status)          # or on_status.run(), or: lightsms-queue consume module:on_status

An event is acked only after its handler returns; a handler that raises gets the event again up to
max_retries times, then it goes to `<queue>.dead` (consumers.dead_letters, `lightsms-queue
dead-events`). Handlers must be idempotent by event id: delivery is at least once.

Where things live: api.py (run, the decorator), handling.py (one event's path), lifecycle.py (stop
and outage logging, both consumers'), redis_consumer.py (the consumer on a Redis broker: atomic
takes, held events given back) with alive_mark.py (its registry renewals) and redis_envelope.py
(kombu's message on a Redis list), runner.py (the consumer on RabbitMQ), failures.py (retry header,
dead record), dead_letters.py (list, requeue, purge `<queue>.dead`), keywords.py (the keyword router).
"""

from .api import ConsumerHandler, handler, run
from .dead_letters import DeadLetters
from .redis_consumer import RedisEventConsumer
from .runner import EventConsumer

__all__ = ["ConsumerHandler", "DeadLetters", "EventConsumer", "RedisEventConsumer", "handler", "run"]
