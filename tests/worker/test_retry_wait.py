"""The in-task wait between attempts: exponential backoff, or LightSMS's Retry-After when longer.
(A Retry-After longer than the window has left defers the batch instead: tests/worker/test_send_edges.py.)"""

from __future__ import annotations

from tenacity import RetryCallState

from core.settings import Settings
from lightsms.errors import ConnectError, ThrottledError
from worker.sending import BatchSender


def wait_after(exc: Exception, *, window: float = 8.0) -> float:
    settings = Settings(lightsms_base_url="http://127.0.0.1:9/", lightsms_retry_window=window)
    sender = BatchSender(settings=settings, store=None, client=None, limiter=None, circuit=None,  # type: ignore[arg-type]
                         requeue=lambda items: None)  # fmt: skip
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((type(exc), exc, None))
    return sender._wait_between_attempts()(state)


def test_retry_after_is_honoured():
    assert wait_after(ThrottledError("busy", retry_after=3.0)) >= 3.0


def test_without_a_hint_the_backoff_is_short():
    assert wait_after(ConnectError("refused")) <= 0.5
    assert wait_after(ThrottledError("busy")) <= 0.5
