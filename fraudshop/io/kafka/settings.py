"""Kafka client settings from the fraudshop config, security included: for kafka-python (producer,
admin) and for Spark's Kafka source and sink."""

from __future__ import annotations

from typing import Any

from fraudshop.config import KafkaConfig

#: The SASL mechanisms fraudshop supports, each with the Java client's login module for it.
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


class UnsupportedSaslMechanismError(ValueError):
    pass


def login_module(mechanism: str) -> str:
    try:
        return LOGIN_MODULES[mechanism]
    except KeyError:
        raise UnsupportedSaslMechanismError(
            f"kafka.sasl_mechanism must be one of {', '.join(LOGIN_MODULES)} (or empty), got {mechanism!r}"
        ) from None


def jaas_quoted(value: str) -> str:
    """The JAAS parser reads backslash escapes inside double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_client_settings(kafka: KafkaConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.ssl_ca_file:
        settings["ssl_cafile"] = kafka.ssl_ca_file
    if kafka.sasl_mechanism:
        login_module(kafka.sasl_mechanism)  # the same mechanisms for both clients
        settings.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    return settings


def _spark_connection_options(kafka: KafkaConfig) -> dict[str, str]:
    """The brokers and security of Spark's Kafka source and sink."""
    options = {"kafka.bootstrap.servers": kafka.bootstrap_servers, "kafka.security.protocol": kafka.security_protocol}
    if kafka.ssl_truststore_path:
        options["kafka.ssl.truststore.location"] = kafka.ssl_truststore_path
        options["kafka.ssl.truststore.password"] = kafka.ssl_truststore_password
    if kafka.sasl_mechanism:
        options["kafka.sasl.mechanism"] = kafka.sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f"{login_module(kafka.sasl_mechanism)} required"
            f" username={jaas_quoted(kafka.sasl_username)} password={jaas_quoted(kafka.sasl_password)};"
        )
    return options


#: Kafka clients' default request.timeout.ms.
KAFKA_REQUEST_TIMEOUT_MS = 30_000


def kafka_source_options(kafka: KafkaConfig) -> dict[str, str]:
    options = {
        **_spark_connection_options(kafka),
        "subscribe": kafka.topic,
        "startingOffsets": kafka.starting_offsets,
        "failOnDataLoss": str(kafka.fail_on_data_loss).lower(),
        # A task reads its offset range up to the log's end; with the broker's default 500 ms fetch
        # wait, each small batch's Kafka tasks waited about 550 ms on it (profiled: 18 ms of CPU).
        "kafka.fetch.max.wait.ms": "20",
        # A call aimed at a broker that died waits this long before it is tried again with fresh metadata;
        # a request's own timeout (Kafka's default 30 s) may not exceed it.
        "kafka.default.api.timeout.ms": str(kafka.api_timeout_seconds * 1000),
        "kafka.request.timeout.ms": str(min(kafka.api_timeout_seconds * 1000, KAFKA_REQUEST_TIMEOUT_MS)),
    }
    if kafka.max_offsets_per_trigger > 0:
        options["maxOffsetsPerTrigger"] = str(kafka.max_offsets_per_trigger)
    return options


def kafka_sink_options(kafka: KafkaConfig, topic: str) -> dict[str, str]:
    """Spark's Kafka sink writing to ``topic``: every record acknowledged by all in-sync replicas, and
    no duplicate from the producer's own retries (a failed batch's resend still repeats its records)."""
    return {
        **_spark_connection_options(kafka),
        "topic": topic,
        "kafka.acks": "all",
        "kafka.enable.idempotence": "true",
        # A batch's few notifications go out at once rather than after the default linger.
        "kafka.linger.ms": "5",
    }
