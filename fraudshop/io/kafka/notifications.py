"""The notifications topic: one JSON message per rule hit, written by the job, read by ``fraudshop
notifications`` and by a bank's notification service."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_sink_options
from fraudshop.model.tables import RULE_HIT_COLUMNS

#: A message's fields: the hit's columns, its id first as ``id`` (the same for the same hit, whichever
#: batch or replay sends it: a consumer drops the repeats).
NOTIFICATION_FIELDS: tuple[str, ...] = ("id", *[name for name in RULE_HIT_COLUMNS if name != "hit_id"])


def notification_messages(hits: DataFrame) -> DataFrame:
    """Kafka (key, value) rows of ``hits``: keyed by the customer (or, without one, the merchant), so one
    customer's notifications stay in order on one partition."""
    fields = [F.col("hit_id" if name == "id" else name).alias(name) for name in NOTIFICATION_FIELDS]
    return hits.select(
        F.coalesce("customer_id", "merchant_id").alias("key"),
        # Times as ISO-8601 UTC with milliseconds: what Cassandra keeps.
        F.to_json(F.struct(*fields), {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"}).alias("value"),
    )


class KafkaNotifications:
    """The job's :class:`~fraudshop.pipeline.ports.NotificationSink`: Spark's Kafka sink."""

    def __init__(self, kafka: KafkaConfig) -> None:
        self.options = kafka_sink_options(kafka, kafka.notifications_topic)

    def publish(self, hits: DataFrame) -> None:
        notification_messages(hits).write.format("kafka").options(**self.options).save()
