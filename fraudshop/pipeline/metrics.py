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
    """Counts and step timings of one micro-batch (of its last attempt, when it was retried). Steps, each
    one Spark job or two (a job per step would add its fixed cost to every batch): ``transactions`` (read,
    parse, write them), ``rejects``, ``alerts`` (read the accounts' changes, apply the rule, write the
    alerts), ``merchant_days`` (write the transactions at merchants by merchant-day, for the rules),
    ``rules`` (the fraud-prevention rules: read, judge, notify, write the hits), ``similarity`` (read the
    known cases and the accounts' history, score, write the scores, notify and write the hits) and
    ``late_changes`` (the scan and the alerts it adds). A step that did not run is absent."""

    batch_id: int
    kafka_records: int = 0
    transactions: int = 0
    rejected: int = 0
    alert_rows: int = 0
    late_changes: int = 0  # recorded changes the late-change scan handled
    late_alert_rows: int = 0
    rules: int = 0  # rules in force over the batch's accounts, their holders and its merchants
    rule_hits: int = 0
    cases: int = 0  # known fraud cases the batch was scored against
    similarity_hits: int = 0
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
        return {name: value for name, value in dataclasses.asdict(self).items() if name != "batch_id"}
