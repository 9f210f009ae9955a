"""What one micro-batch did: record counts and the time each step took."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchMetrics:
    """Counts and step timings of one micro-batch (of its last attempt, when it was retried).

    Steps: ``read_kafka`` (the batch's records, cached), ``parse``, ``write_transactions``,
    ``write_rejects``, ``read_changes_and_join`` (the direct join to cust_change and the rule),
    ``write_alerts`` and ``late_changes`` (the scan for changes recorded since the last batch and
    the alerts they add). A step that did not run is absent.
    """

    batch_id: int
    kafka_records: int = 0
    transactions: int = 0
    rejected: int = 0
    alert_rows: int = 0
    late_alert_rows: int = 0
    step_ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.step_ms[name] = round(self.step_ms.get(name, 0.0) + elapsed, 1)

    def as_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        del fields["batch_id"]
        return fields
