"""The transaction and notifications topics."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings

log = logging.getLogger(__name__)


def ensure_topic(kafka: KafkaConfig) -> None:
    """Create the transaction topic and the notifications topic, each unless it exists, with the
    configured partitions, replicas and in-sync replicas an acks=all write needs."""
    admin = KafkaAdminClient(**kafka_client_settings(kafka))
    try:
        for topic in (kafka.topic, kafka.notifications_topic):
            try:
                # 0: the brokers' own setting, never overridden by a weaker one.
                minimum = kafka.topic_min_insync_replicas
                settings = {"min.insync.replicas": str(minimum)} if minimum else {}
                admin.create_topics(
                    [NewTopic(topic, kafka.topic_partitions, kafka.topic_replication_factor, topic_configs=settings)]
                )
                log.info(
                    "created topic %s with %d partitions, %d replicas (in sync for a write: %s)",
                    topic,
                    kafka.topic_partitions,
                    kafka.topic_replication_factor,
                    minimum or "the brokers' setting",
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
