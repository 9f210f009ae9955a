"""Reading the notifications topic as a bank's notification service would: each hit once, however often
at-least-once delivery repeats its message."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings

log = logging.getLogger(__name__)

#: Ids remembered to drop repeats: a repeat comes from a batch run again, within minutes of the first.
REMEMBERED_IDS = 100_000


class SeenIds:
    """The last ``remembered`` ids seen."""

    def __init__(self, remembered: int = REMEMBERED_IDS) -> None:
        self.remembered = remembered
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, identity: str) -> bool:
        """Whether ``identity`` is new (and remember it)."""
        if identity in self._ids:
            self._ids.move_to_end(identity)
            return False
        self._ids[identity] = None
        if len(self._ids) > self.remembered:
            self._ids.popitem(last=False)
        return True


class NotificationFeed:
    """The notifications topic, from its beginning or from its end as it is now (the end is fixed at once,
    so nothing announced in between is missed). Each :meth:`poll` returns the messages decoded, each id
    once; a message that is not JSON is logged and skipped."""

    def __init__(self, kafka: KafkaConfig, from_beginning: bool) -> None:
        self.topic = kafka.notifications_topic
        self._consumer = KafkaConsumer(**kafka_client_settings(kafka), enable_auto_commit=False)
        numbers = self._consumer.partitions_for_topic(self.topic)
        if not numbers:
            self._consumer.close()
            raise RuntimeError(f"no topic {self.topic}: the job, the demo or `fraudshop produce` creates it")
        partitions = [TopicPartition(self.topic, number) for number in sorted(numbers)]
        self._consumer.assign(partitions)
        if from_beginning:
            self._consumer.seek_to_beginning()
        else:
            self._consumer.seek_to_end()
        for partition in partitions:
            self._consumer.position(partition)  # resolved now, not at the first poll
        self._seen = SeenIds()

    def poll(self, seconds: float) -> list[dict[str, Any]]:
        """The new messages that came within ``seconds``."""
        found = []
        for records in self._consumer.poll(timeout_ms=max(1, round(seconds * 1000))).values():
            for record in records:
                try:
                    message = json.loads(record.value)
                except ValueError:
                    log.warning("skipped a message that is not JSON at offset %d of %s", record.offset, self.topic)
                    continue
                if self._seen.first_time(str(message.get("id"))):
                    found.append(message)
        return found

    def close(self) -> None:
        self._consumer.close()


def notification_messages(kafka: KafkaConfig, follow: bool, from_beginning: bool) -> Iterator[dict[str, Any]]:
    """The topic's messages, each id once: from its beginning or from now; with ``follow`` until
    interrupted, else until a second passes with none."""
    feed = NotificationFeed(kafka, from_beginning)
    try:
        while True:
            messages = feed.poll(1.0)
            yield from messages
            if not messages and not follow:
                return
    finally:
        feed.close()
