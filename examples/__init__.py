"""Runnable examples of handlers for inbound SMS, on the public API only (producers, consumers,
core.settings). Each module has a `handle(event)`; run one with the keyword router in front, so that
STOP, START and HELP never reach it:

    lightsms-queue consume --keywords examples.poll_tally:handle        a poll tallying A-D answers
    lightsms-queue consume --keywords examples.ticket_intake:handle     support tickets, acknowledged
    lightsms-queue consume --keywords examples.auto_reply_rules:handle  an auto-reply rule table

Handlers are idempotent by event id: a redelivered event counts no second vote, opens no second
ticket and sends no second reply.
"""
