"""Reading the notifications topic as a bank's notification service would: each hit once, however often
at-least-once delivery repeats its message."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from kafka import KafkaConsumer

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings

log = logging.getLogger(__name__)

#: Ids remembered to drop repeats: a repeat comes from a batch sent again, within minutes of the first.
REMEMBERED_IDS = 100_000


def first_deliveries(messages: Iterable[dict[str, Any]], remembered: int = REMEMBERED_IDS) -> Iterator[dict[str, Any]]:
    """``messages`` without the repeats of an id seen among the last ``remembered`` ids."""
    seen: OrderedDict[str, None] = OrderedDict()
    for message in messages:
        identity = str(message.get("id"))
        if identity in seen:
            seen.move_to_end(identity)
            continue
        seen[identity] = None
        if len(seen) > remembered:
            seen.popitem(last=False)
        yield message


def notification_messages(kafka: KafkaConfig, follow: bool, from_beginning: bool) -> Iterator[dict[str, Any]]:
    """The topic's messages, decoded: from its beginning or from now; with ``follow`` until interrupted,
    else until no message came for a second. A message that is not JSON is logged and skipped."""
    consumer = KafkaConsumer(
        kafka.notifications_topic,
        **kafka_client_settings(kafka),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        # The iteration below ends after a quiet second; following, it starts again.
        consumer_timeout_ms=1000,
    )
    try:
        while True:
            for record in consumer:
                try:
                    yield json.loads(record.value)
                except ValueError:
                    log.warning(
                        "skipped a message that is not JSON at offset %d of partition %d",
                        record.offset,
                        record.partition,
                    )
            if not follow:
                return
    finally:
        consumer.close()
