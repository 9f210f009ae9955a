"""The transaction topic."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from fraudshop.config import KafkaConfig
from fraudshop.io.kafka.settings import kafka_client_settings

log = logging.getLogger(__name__)


def ensure_topic(kafka: KafkaConfig) -> None:
    admin = KafkaAdminClient(**kafka_client_settings(kafka))
    try:
        admin.create_topics([NewTopic(kafka.topic, kafka.topic_partitions, 1)])
        log.info("created topic %s with %d partitions", kafka.topic, kafka.topic_partitions)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
