"""The one bounded wait of the lab tooling and the tests: poll a condition with tenacity until it
holds, for at most a given time, then fail naming what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = 1.0,
    unavailable: tuple[type[Exception], ...] = (),
    every_10_seconds: Callable[[float], None] | None = None,
) -> float:
    """Call ``condition`` every ``interval`` seconds until it returns true; return the seconds waited.

    An ``unavailable`` error (a server restarting) counts as not yet; any other error ends the wait
    at once (a check that the awaited process is still alive raises). After ``timeout`` seconds
    raises TimeoutError naming ``what``. ``every_10_seconds(elapsed)`` reports a long wait.
    """
    started = time.monotonic()
    reported = 0

    def report(state: RetryCallState) -> None:
        nonlocal reported
        elapsed = state.seconds_since_start or 0.0
        if every_10_seconds is not None and elapsed >= (reported + 1) * 10:
            reported += 1
            every_10_seconds(elapsed)

    waiting = Retrying(
        retry=retry_if_result(lambda done: not done) | retry_if_exception_type(unavailable),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        before_sleep=report,
    )
    try:
        waiting(condition)
    except RetryError:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from None
    return time.monotonic() - started
