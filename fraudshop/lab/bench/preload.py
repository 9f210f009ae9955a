"""Pre-load the topic with a backlog, fast: several producer processes, each sending a slice.

One kafka-python producer sends about 8,500 txn/s on the 2-core machine (the client is pure
Python); two processes about 13,500/s. Kafka's own Java producer (ConsoleProducer) would be faster
still, but it lives in the kafka-tools jar, which the local stack's Kafka classpath does not hold
(nor would a cluster's client machine, necessarily); processes need nothing more, and every send
is checked (CheckedSender) so the backlog on the topic is exactly what was generated."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time
from collections.abc import Iterable, Sequence
from multiprocessing.sharedctypes import Synchronized

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.producer import checked_sender, encode
from fraudshop.lab.console import Step
from fraudshop.lab.waiting import wait_until
from fraudshop.model.records import Transaction

log = logging.getLogger(__name__)

#: (key, value) of one Kafka record.
Record = tuple[bytes, bytes]
#: A producer adds to the shared count after this many sends.
_COUNT_EVERY = 1000


def slices(items: Sequence[Record], count: int) -> list[Sequence[Record]]:
    """``items`` cut into ``count`` contiguous slices, the same size give or take one (none empty)."""
    size, extra = divmod(len(items), count)
    bounds = [index * size + min(index, extra) for index in range(count + 1)]
    return [items[start:end] for start, end in itertools.pairwise(bounds) if end > start]


def _send_slice(kafka: KafkaConfig, records: Sequence[Record], sent: Synchronized[int]) -> None:
    """One producer process: send every record, checked; a failure exits non-zero."""
    with checked_sender(kafka, linger_ms=20, batch_size=256 * 1024) as sender:
        for index, (key, value) in enumerate(records, start=1):
            sender.send(value, key=key)
            if index % _COUNT_EVERY == 0:
                with sent.get_lock():
                    sent.value += _COUNT_EVERY
    with sent.get_lock():
        sent.value += len(records) % _COUNT_EVERY


def preload(
    kafka: KafkaConfig, transactions: Iterable[Transaction], processes: int, shown: Step, timeout: float
) -> int:
    """Send ``transactions`` (keyed by account, as the producer does) with ``processes`` producer
    processes; return how many were sent. Raises if any producer failed."""
    # Encoded as they are taken: the backlog is held once, as bytes, not as dicts too.
    records = [(str(t.get("account_no", "")).encode(), encode(t, "json")) for t in transactions]
    # spawn: this process holds the Cassandra driver's threads, which a fork would copy mid-lock.
    context = multiprocessing.get_context("spawn")
    sent = context.Value("q", 0)
    started = time.monotonic()
    producers = [
        context.Process(target=_send_slice, args=(kafka, part, sent), name=f"bench-preload-{index}")
        for index, part in enumerate(slices(records, max(1, processes)))
    ]
    for producer in producers:
        producer.start()

    def all_sent() -> bool:
        elapsed = time.monotonic() - started
        shown.update(
            f"pre-loading the backlog: {sent.value:,} of {len(records):,} sent ({sent.value / elapsed:,.0f}/s)"
        )
        return not any(producer.is_alive() for producer in producers)

    try:
        wait_until(all_sent, timeout, "the backlog's producers", interval=0.5)
    finally:
        for producer in producers:
            if producer.is_alive():
                producer.kill()
            producer.join()
    seconds = time.monotonic() - started
    failed = [producer.name for producer in producers if producer.exitcode != 0]
    if failed or sent.value != len(records):
        raise RuntimeError(
            f"pre-loading the backlog failed: {failed or 'none failed'}, {sent.value} of {len(records)} sent"
        )
    log.info(
        "pre-loaded %d transactions with %d producers in %.1f s (%.0f/s)",
        len(records),
        len(producers),
        seconds,
        len(records) / seconds,
    )
    return len(records)
