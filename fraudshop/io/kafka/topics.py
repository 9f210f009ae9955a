"""The transaction and notifications topics."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings

log = logging.getLogger(__name__)


def ensure_topic(kafka: KafkaConfig) -> None:
    """Create the transaction topic and the notifications topic, each unless it exists."""
    admin = KafkaAdminClient(**kafka_client_settings(kafka))
    try:
        for topic in (kafka.topic, kafka.notifications_topic):
            try:
                admin.create_topics([NewTopic(topic, kafka.topic_partitions, 1)])
                log.info("created topic %s with %d partitions", topic, kafka.topic_partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
