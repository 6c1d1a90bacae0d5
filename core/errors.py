"""The project's own errors, one root beside the LightSMS client's tree (lightsms.errors).

    LightSmsQueueError
    ├── ConfigError     invalid configuration: one line naming the variable
    └── PayloadError    a task or event payload this version cannot read (also a ValueError)

Input a caller got wrong (a phone, a text, an opted-out recipient) is lightsms.errors.InvalidInput
(a ValueError naming the field), raised before anything is stored.
"""

from __future__ import annotations


class LightSmsQueueError(Exception):
    """Root of lightsms-queue's own errors."""


class ConfigError(LightSmsQueueError):
    """Invalid configuration: one line naming the variable."""


class PayloadError(LightSmsQueueError, ValueError):
    """A payload this version cannot read: refused, not guessed at."""
