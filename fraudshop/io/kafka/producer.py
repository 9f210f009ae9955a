"""Send card transactions to the transaction topic, keyed by account, at a steady rate; every send
is checked, so records the broker did not acknowledge are reported, never dropped silently."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.model.records import FORMATS, Transaction, legacy_fields

log = logging.getLogger(__name__)


class UndeliveredRecordsError(RuntimeError):
    def __init__(self, topic: str, failed: int, attempted: int, first_error: BaseException | None) -> None:
        self.failed = failed
        self.attempted = attempted
        self.first_error = first_error
        super().__init__(
            f"{failed} of {attempted} records were not delivered to topic {topic}"
            + (f"; first error: {type(first_error).__name__}: {first_error}" if first_error else "")
        )


class CheckedSender:
    """Sends records to one topic and counts every send that fails, whether ``send`` raises or
    the broker later refuses the record (its future fails)."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.attempted = 0
        self.failed = 0
        self.first_error: BaseException | None = None
        self._lock = threading.Lock()  # errbacks run on the producer's I/O thread

    def send(self, value: bytes, key: bytes | None = None) -> None:
        self.attempted += 1
        try:
            future = self.producer.send(self.topic, key=key, value=value)
        except KafkaError as error:
            # No broker answered in time (max_block_ms): stop here rather than block on every record.
            self._failed(error)
            self.check()
        else:
            future.add_errback(self._failed)

    def check(self) -> None:
        """Wait until every record sent so far is acknowledged or failed; raise if any failed."""
        self.producer.flush()
        if self.failed:
            raise UndeliveredRecordsError(self.topic, self.failed, self.attempted, self.first_error)

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self.failed += 1
            self.first_error = self.first_error or error


@contextmanager
def checked_sender(kafka: KafkaConfig, **producer_settings: Any) -> Iterator[CheckedSender]:
    """A :class:`CheckedSender` to ``kafka.topic``, checked on leaving; the producer is closed in any case."""
    producer = KafkaProducer(**kafka_client_settings(kafka), **{"acks": "all", **producer_settings})
    try:
        sender = CheckedSender(producer, kafka.topic)
        yield sender
        sender.check()
    finally:
        producer.close()


def encode(transaction: Transaction, record_format: str) -> bytes:
    if record_format == "json":
        return json.dumps(transaction, separators=(",", ":")).encode()
    if record_format == "legacy":
        return ";".join(str(transaction.get(name, "")) for name in legacy_fields(transaction)).encode()
    raise ValueError(f"record format must be one of {FORMATS}, got {record_format!r}")


def send_transactions(
    kafka: KafkaConfig,
    transactions: Iterable[Transaction],
    rate: float,
    limit: int | None = None,
    duration: timedelta | None = None,
    record_format: str = "json",
    stop: threading.Event | None = None,
) -> int:
    """Send transactions keyed by account (an account's records stay in order on one partition),
    at ``rate`` per second (0 = as fast as possible), until ``limit`` records, ``duration`` or
    ``stop`` is set. Returns the number sent, every one acknowledged by the broker."""
    started = time.monotonic()
    deadline = started + duration.total_seconds() if duration else None
    next_report = started + 5
    pending = iter(transactions)
    with checked_sender(kafka, linger_ms=5) as sender:
        # Limits are checked before taking the next transaction, so the iterable yields exactly
        # the ones sent (the benchmark records what it offered by wrapping it).
        while (
            (limit is None or sender.attempted < limit)
            and (deadline is None or time.monotonic() < deadline)
            and (stop is None or not stop.is_set())
            and (transaction := next(pending, None)) is not None
        ):
            sender.send(encode(transaction, record_format), key=str(transaction.get("account_no", "")).encode())
            if rate > 0 and (pause := started + sender.attempted / rate - time.monotonic()) > 0:
                time.sleep(pause)
            if time.monotonic() >= next_report:
                elapsed = time.monotonic() - started
                log.info("sent %d transactions (%.0f/s)", sender.attempted, sender.attempted / elapsed)
                next_report += 5
    log.info("sent %d transactions to %s in %.1f s", sender.attempted, kafka.topic, time.monotonic() - started)
    return sender.attempted
