"""Send card transactions to Kafka: synthetic ones at a steady rate, or a CSV replayed."""

from __future__ import annotations

import csv
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from fraudshop.config import KafkaConfig
from fraudshop.record_format import JSON_FIELDS, LEGACY_FIELDS

log = logging.getLogger(__name__)

Transaction = dict[str, Any]
FORMATS = ("json", "legacy")

# (merchant, transaction code, typical amount) — the spread of a retail card portfolio.
_MERCHANTS = (
    ("GROCERY MART", "POS", 45.0),
    ("FUEL STOP", "POS", 55.0),
    ("COFFEE CORNER", "POS", 6.5),
    ("ONLINE BOOKS", "ECOM", 25.0),
    ("ELECTRONICS HUB", "ECOM", 320.0),
    ("CITY TRANSIT", "POS", 3.0),
    ("HOTEL PLAZA", "POS", 180.0),
    ("ATM WITHDRAWAL", "ATM", 100.0),
    ("STREAMING PLUS", "RECUR", 12.99),
    ("AIRLINE TICKETS", "ECOM", 450.0),
)


def account_number(index: int) -> str:
    return f"ACC{index:07d}"


def synthetic_transactions(
    accounts: int, seed: int = 0, clock: Callable[[], datetime] | None = None
) -> Iterator[Transaction]:
    """An endless, seeded stream of plausible transactions over ``accounts`` accounts, posted "now".

    ``clock`` returns the post time of the next transaction (default: the current UTC time).
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    rng = random.Random(seed)
    now = clock or (lambda: datetime.now(UTC))
    cards = {i: f"4{rng.randrange(10**14, 10**15):015d}" for i in range(accounts)}
    while True:
        index = rng.randrange(accounts)
        merchant, code, typical = rng.choice(_MERCHANTS)
        amount = round(min(typical * rng.lognormvariate(0, 0.6), 25_000.0), 2)
        yield {
            "account_no": account_number(index),
            "tranpostdt": now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tranid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "amount": amount,
            "merchant": merchant,
            "cardnum": cards[index],
            "trancd": code,
            "trandescription": f"{merchant} {code}",
            "transtat": "POSTED",
            "trantype": "CREDIT" if code == "RECUR" and rng.random() < 0.05 else "DEBIT",
            "tranamt": amount,
        }


def csv_transactions(path: Path, restamp: bool) -> Iterator[Transaction]:
    """Rows of a CSV file: with a header naming fields, or headerless in the original's field order.

    With ``restamp`` the post time becomes "now" as each row is sent, as the original producer did.
    """
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        first = next(rows, None)
        if first is None:
            return
        has_header = "account_no" in first
        header = first if has_header else list(LEGACY_FIELDS)
        unknown = set(header) - set(JSON_FIELDS)
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {sorted(unknown)}; known: {', '.join(JSON_FIELDS)}")
        for row in rows if has_header else [first, *rows]:
            transaction: Transaction = {name: value for name, value in zip(header, row, strict=False) if value != ""}
            if restamp:
                transaction["tranpostdt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            yield transaction


def encode(transaction: Transaction, record_format: str) -> bytes:
    if record_format == "json":
        return json.dumps(transaction, separators=(",", ":")).encode()
    if record_format == "legacy":
        return ";".join(str(transaction.get(name, "")) for name in LEGACY_FIELDS).encode()
    raise ValueError(f"record format must be one of {FORMATS}, got {record_format!r}")


def kafka_client_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """kafka-python settings, security included."""
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.ssl_ca_file:
        settings["ssl_cafile"] = kafka.ssl_ca_file
    if kafka.sasl_mechanism:
        settings.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    return settings


def ensure_topic(kafka: KafkaConfig) -> None:
    admin = KafkaAdminClient(**kafka_client_settings(kafka))
    try:
        admin.create_topics([NewTopic(kafka.topic, kafka.topic_partitions, 1)])
        log.info("created topic %s with %d partitions", kafka.topic, kafka.topic_partitions)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


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
    ``stop`` is set. Returns the number sent; the broker acknowledged every one before this returns."""
    producer = KafkaProducer(**kafka_client_settings(kafka), acks="all", linger_ms=5)
    started = time.monotonic()
    deadline = started + duration.total_seconds() if duration else None
    sent = 0
    next_report = started + 5
    pending = iter(transactions)
    try:
        # Limits are checked before taking the next transaction, so the iterable yields exactly
        # the ones sent (the benchmark records what it offered by wrapping it).
        while not (
            (limit is not None and sent >= limit)
            or (deadline is not None and time.monotonic() >= deadline)
            or (stop is not None and stop.is_set())
        ):
            transaction = next(pending, None)
            if transaction is None:
                break
            producer.send(
                kafka.topic,
                key=str(transaction.get("account_no", "")).encode(),
                value=encode(transaction, record_format),
            )
            sent += 1
            if rate > 0:
                pause = started + sent / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            if time.monotonic() >= next_report:
                log.info("sent %d transactions (%.0f/s)", sent, sent / (time.monotonic() - started))
                next_report += 5
        producer.flush()
    finally:
        producer.close()
    log.info("sent %d transactions to %s in %.1f s", sent, kafka.topic, time.monotonic() - started)
    return sent
