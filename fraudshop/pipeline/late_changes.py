"""The late-change scan: changes recorded after the transactions they cover, and the alerts they add."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from fraudshop.model.changes import RecordedChange
from fraudshop.model.tables import CHANGE_COLUMNS, PREVIOUS_CUSTOMER
from fraudshop.pipeline.alerts import write_alerts
from fraudshop.pipeline.ports import DetectionStore
from fraudshop.pipeline.recent_changes import CHANGE_SCHEMA
from fraudshop.transforms.detection import (
    flag_changed_customer_transactions,
    supersede_previous_owners,
    transactions_in_change_windows,
)

log = logging.getLogger(__name__)

RECORDED_CHANGE_SCHEMA = StructType([*CHANGE_SCHEMA.fields, StructField(PREVIOUS_CUSTOMER, StringType())])


@dataclass(frozen=True)
class ScanOutcome:
    changes: int  # recorded changes handled by this scan
    alert_rows: int  # alert rows they wrote
    caught_up: bool  # False: stopped at the bound, more changes wait for the next batches


@dataclass(eq=False)
class LateChangeScanner:
    """Each micro-batch, flag the stored transactions in the windows of the changes recorded since the
    previous scan, and save how far it got under the job's identity, so a restarted job resumes it.

    Changes become visible a little after their recorded_at (clock skew, write latency): each scan starts
    ``margin`` before the previous one ended, and skips the entries it already handled. It handles at most
    ``changes_per_batch`` new entries, oldest first: after a long outage the job catches up over several
    batches, each short enough for the stuck-batch watchdog."""

    store: DetectionStore
    window_seconds: int
    margin: timedelta
    changes_per_batch: int
    job_id: Callable[[], str]  # called on the first scan: the streaming query's id is known only once it runs
    _job: str | None = field(default=None, init=False)
    _scanned_until: datetime | None = field(default=None, init=False)
    # Log entries already handled at or after the next scan's start: re-read, not redone.
    _handled: set[tuple[datetime, str, datetime, str]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if self.changes_per_batch < 1:
            raise ValueError(f"a scan must handle at least 1 change, got {self.changes_per_batch}")

    def scan(self, spark: SparkSession, batch_at: datetime) -> ScanOutcome:
        if self._job is None or self._scanned_until is None:
            # First batch of this run: resume the scan, or look one window back on a first start.
            self._job = self.job_id()
            saved = self.store.load_scan_progress(self._job)
            self._scanned_until = saved or batch_at - timedelta(seconds=self.window_seconds)
        since = self._scanned_until - self.margin
        # The handled entries at or after `since` come back too: read that many more, so that the
        # bound counts new entries only and the scan always moves on.
        rereads = sum(1 for key in self._handled if key[0] >= since)
        recorded = self.store.changes_recorded_since(since, self.changes_per_batch + rereads)
        fresh = [entry for entry in recorded if entry.key not in self._handled][: self.changes_per_batch]
        caught_up = len(recorded) < self.changes_per_batch + rereads and len(fresh) < self.changes_per_batch
        written = self._flag_transactions(spark, fresh, batch_at) if fresh else 0
        if fresh:
            log.info("%d change(s) recorded since %s: %d alert rows written", len(fresh), since.isoformat(), written)
        self._handled.update(entry.key for entry in fresh)
        # Caught up: everything recorded before this batch is handled (late-visible entries are
        # the margin's job). Stopped at the bound: up to the last entry handled; entries recorded
        # at the same instant and not yet handled are read again (>=) and handled next time.
        if caught_up:
            self._scanned_until = max(self._scanned_until, batch_at)
        elif fresh:
            # Never past the batch time: an entry from a writer whose clock runs ahead must not
            # move the scan beyond changes other writers record now (it stays in _handled).
            self._scanned_until = max(self._scanned_until, min(fresh[-1].recorded_at, batch_at))
        next_since = self._scanned_until - self.margin
        self._handled = {key for key in self._handled if key[0] >= next_since}
        self.store.save_scan_progress(self._job, self._scanned_until)
        return ScanOutcome(len(fresh), written, caught_up)

    def _flag_transactions(self, spark: SparkSession, fresh: list[RecordedChange], batch_at: datetime) -> int:
        # Spark reads aware datetimes as instants; naive ones would be taken as local time.
        rows = [
            (*(getattr(entry.change, name) for name in CHANGE_COLUMNS), entry.previous_customer_id) for entry in fresh
        ]
        recorded = spark.createDataFrame(rows, RECORDED_CHANGE_SCHEMA)
        accounts, window = recorded.select("account_no").distinct(), self.window_seconds
        candidates = transactions_in_change_windows(self.store.transactions_of_accounts(accounts), recorded, window)
        alerts = flag_changed_customer_transactions(candidates, self.store.changes_of_accounts(accounts), window)
        return write_alerts(self.store, supersede_previous_owners(alerts, recorded, window), batch_at)
