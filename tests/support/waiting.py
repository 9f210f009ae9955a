"""Waiting in tests for something a job or a server does in its own time."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 1.0,
    unavailable: tuple[type[Exception], ...] = (),
) -> None:
    """Retry ``condition`` until true; an ``unavailable`` error (a server restarting) counts as
    false. Raises TimeoutError naming ``what`` after ``timeout`` seconds."""
    waiting = Retrying(
        retry=retry_if_result(lambda done: not done) | retry_if_exception_type(unavailable),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
    )
    try:
        waiting(condition)
    except RetryError:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from None
