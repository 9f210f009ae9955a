"""Whole-batch retries and the stuck-batch watchdog, around any ``foreachBatch`` function. The settings,
all counted from when Spark hands the batch over (docs/reliability.md, "How the retry settings relate"):

- the watchdog ends the job (exit 70) once the batch has run ``job.batch_timeout_seconds``: a call stuck
  in the JVM cannot be interrupted, and the restarted job resumes the batch from its checkpoint;
- failed attempt n is retried after ``job.batch_retry_backoff_seconds * 2 ** (n - 1)`` s, up to
  ``job.batch_attempts`` attempts, and only if, after its backoff, it could take as long as the longest
  attempt so far and still end before the deadline. Otherwise the last error is raised at once, so the
  stream fails with it (not with the watchdog's) and the restarted job resumes the batch.

A batch is processed or the call raises: returning without processing it, Spark would commit its offsets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from typing import TypeVar

from pyspark.sql import DataFrame
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

log = logging.getLogger(__name__)

#: What Spark's ``foreachBatch`` calls: the micro-batch and its id.
BatchFunction = Callable[[DataFrame, int], None]
#: Exit code of a job stopped by the stuck-batch watchdog (EX_SOFTWARE).
STUCK_BATCH_EXIT_CODE = 70
#: What a watchdog watches: a batch's id, or a name for other work.
Work = TypeVar("Work", int, str)


def is_kafka_data_loss(error: BaseException) -> bool:
    """Spark's Kafka source reports lost records with advice naming its ``failOnDataLoss`` option."""
    return "failOnDataLoss" in str(error)


def first_line(error: BaseException) -> str:
    """The gist of an error; for a Java one (Py4J) its exception, not the Python call site."""
    java_exception = getattr(error, "java_exception", None)
    text = (str(java_exception) if java_exception is not None else str(error)).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def exit_stuck_job(work: int | str, timeout_seconds: float) -> None:
    """``work``: the stuck batch's id, or what else is stuck."""
    log.error(
        "%s has not finished after %.0f s: a Cassandra or Kafka call is stuck. Stopping the job; "
        "restart it and it resumes from its checkpoint.",
        f"batch {work}" if isinstance(work, int) else work,
        timeout_seconds,
    )
    logging.shutdown()
    os._exit(STUCK_BATCH_EXIT_CODE)


@contextmanager
def watchdog(timeout_seconds: float | None, on_stuck: Callable[[Work, float], None], work: Work) -> Iterator[None]:
    """Call ``on_stuck(work, timeout_seconds)`` (by default: exit the job) if the block is still running
    after ``timeout_seconds``; None: no limit."""
    if timeout_seconds is None:
        yield
        return
    timer = threading.Timer(timeout_seconds, on_stuck, (work, timeout_seconds))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@dataclass(eq=False)
class ResilientBatch:
    """Every write of a batch must be idempotent. Kafka data loss is never retried: a retry would read the
    same missing offsets."""

    process: BatchFunction
    attempts: int
    backoff_seconds: float
    timeout_seconds: float | None
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    on_stuck: Callable[[int, float], None] = exit_stuck_job

    def __post_init__(self) -> None:
        if self.attempts < 1:
            # With no attempt, the batch would "succeed" unprocessed and Spark commit its offsets.
            raise ValueError(f"a batch needs at least 1 attempt, got {self.attempts}")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"the batch timeout must be > 0 seconds, got {self.timeout_seconds}")

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        with watchdog(self.timeout_seconds, self.on_stuck, batch_id):
            self._process_with_retries(records, batch_id)

    def _process_with_retries(self, records: DataFrame, batch_id: int) -> None:
        started = self.clock()
        longest_attempt = 0.0
        out_of_time = False

        def attempt() -> None:
            nonlocal longest_attempt
            attempt_started = self.clock()
            try:
                self.process(records, batch_id)
            finally:
                longest_attempt = max(longest_attempt, self.clock() - attempt_started)

        def stop(state: RetryCallState) -> bool:
            nonlocal out_of_time
            if state.attempt_number >= self.attempts:
                return True
            if self.timeout_seconds is None:
                return False
            # The next attempt, after its backoff, must be able to take as long as the longest one
            # so far and still end before the watchdog fires: otherwise fail now, with this error.
            next_end = self.clock() - started + state.upcoming_sleep + longest_attempt
            out_of_time = next_end >= self.timeout_seconds
            return out_of_time

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "batch %d failed (attempt %d of %d), retrying in %.0f s: %s",
                batch_id,
                state.attempt_number,
                self.attempts,
                state.upcoming_sleep,
                first_line(error) if error else "",
            )

        retrying = Retrying(
            stop=stop,
            wait=wait_exponential(multiplier=self.backoff_seconds, exp_base=2),
            retry=retry_if_exception(lambda error: not is_kafka_data_loss(error)),
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,  # the stream fails with the batch's own last error
        )
        try:
            retrying(attempt)
        except Exception as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            why = (
                f" (another attempt could not end within the {self.timeout_seconds:.0f} s timeout)"
                if out_of_time
                else ""
            )
            log.error("batch %d failed %d time(s), giving up%s: %s", batch_id, attempts, why, first_line(error))
            raise
