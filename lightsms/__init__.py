"""LightSMS API client: signing, server clock, transport, tolerant parsing, typed results and errors."""

from .client import DEFAULT_BASE_URL, STATUS_IDS_PER_CALL, LightSmsClient
from .codes import CLOCK_CODES, CODES, REQUEST_CODES, Outcome, lookup, parse_code
from .errors import (
    AccountError,
    AmbiguousError,
    ClockRejectedError,
    ConnectError,
    InsufficientFundsError,
    InvalidInput,
    InvalidLoginError,
    LightSmsError,
    MalformedResponseError,
    NotSentError,
    PermanentError,
    ProviderUnavailableError,
    SuppressionError,
    ThrottledError,
    error_for_code,
)
from .models import Balance, BlacklistEntry, DeliveryState, DeliveryStatus, IncomingSms, PhoneResult
from .phones import mask_phone, normalize_phone
from .signing import sign
from .text import SmsParts, sms_parts

__all__ = [
    "CLOCK_CODES",
    "CODES",
    "DEFAULT_BASE_URL",
    "REQUEST_CODES",
    "STATUS_IDS_PER_CALL",
    "AccountError",
    "AmbiguousError",
    "Balance",
    "BlacklistEntry",
    "ClockRejectedError",
    "ConnectError",
    "DeliveryState",
    "DeliveryStatus",
    "IncomingSms",
    "InsufficientFundsError",
    "InvalidInput",
    "InvalidLoginError",
    "LightSmsClient",
    "LightSmsError",
    "MalformedResponseError",
    "NotSentError",
    "Outcome",
    "PermanentError",
    "PhoneResult",
    "ProviderUnavailableError",
    "SmsParts",
    "SuppressionError",
    "ThrottledError",
    "error_for_code",
    "lookup",
    "mask_phone",
    "normalize_phone",
    "parse_code",
    "sign",
    "sms_parts",
]
