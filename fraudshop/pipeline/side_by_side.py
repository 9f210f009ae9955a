"""Spark jobs run side by side from the driver, so that each one's fixed costs overlap the others'."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from pyspark.util import inheritable_thread_target


def run_side_by_side(threads: ThreadPoolExecutor, *calls: Callable[[], object]) -> None:
    """Run ``calls`` on ``threads`` (kept for the job's life: PySpark gives each new Python thread a JVM
    thread and a connection) and wait for every one, even when one fails, so that a retry never runs
    beside a leftover; then raise the first error, if any."""
    running = [threads.submit(inheritable_thread_target(call)) for call in calls]
    wait(running)
    for finished in running:
        finished.result()
