"""Hosts, credentials and TLS from config reach every client: Spark's Kafka source, the Spark
Cassandra Connector, kafka-python and cassandra-driver."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest

from fraudshop.config import KafkaConfig, SaslMechanism, load_config
from fraudshop.io.cassandra.session import connect
from fraudshop.io.kafka.settings import (
    LOGIN_MODULES,
    UnsupportedSaslMechanismError,
    jaas_quoted,
    kafka_client_settings,
    kafka_source_options,
)
from fraudshop.jobs.session import cassandra_connector_settings, session_settings

SECURE = [
    "kafka.bootstrap_servers=k1:9093,k2:9093",
    "kafka.security_protocol=SASL_SSL",
    "kafka.sasl_mechanism=SCRAM-SHA-512",
    "kafka.sasl_username=fraud-job",
    "kafka.ssl_truststore_path=/etc/kafka/truststore.jks",
    "kafka.ssl_ca_file=/etc/kafka/ca.pem",
    "cassandra.hosts=c1,c2,c3",
    "cassandra.local_dc=dc1",
    "cassandra.username=fraud",
    "cassandra.ssl_enabled=true",
    "cassandra.ssl_truststore_path=/etc/cassandra/truststore.p12",
    "cassandra.ssl_ca_file=",
    "cassandra.concurrent_writes=64",
]
SECRETS = {
    "FRAUDSHOP_KAFKA__SASL_PASSWORD": "kafka-secret",
    "FRAUDSHOP_KAFKA__SSL_TRUSTSTORE_PASSWORD": "ks-secret",
    "FRAUDSHOP_CASSANDRA__PASSWORD": "cass-secret",
    "FRAUDSHOP_CASSANDRA__SSL_TRUSTSTORE_PASSWORD": "ts-secret",
}


def test_spark_kafka_source_gets_sasl_and_tls() -> None:
    options = kafka_source_options(load_config(overrides=SECURE, environ=SECRETS).kafka)
    assert options["kafka.bootstrap.servers"] == "k1:9093,k2:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="fraud-job" password="kafka-secret";'
    )
    assert options["kafka.ssl.truststore.location"] == "/etc/kafka/truststore.jks"
    assert options["kafka.ssl.truststore.password"] == "ks-secret"
    assert options["failOnDataLoss"] == "true" and options["startingOffsets"] == "earliest"
    # Kafka's own default unless set: a call aimed at a lost broker waits this long.
    assert options["kafka.default.api.timeout.ms"] == "60000" and options["kafka.request.timeout.ms"] == "30000"
    lab_cluster = kafka_source_options(
        load_config(overrides=[*SECURE, "kafka.api_timeout_seconds=10"], environ=SECRETS).kafka
    )
    # Kafka refuses a request timeout above the call's.
    assert lab_cluster["kafka.default.api.timeout.ms"] == "10000" == lab_cluster["kafka.request.timeout.ms"]


def test_plaintext_kafka_source_has_no_security_options() -> None:
    options = kafka_source_options(load_config(environ={}).kafka)
    assert not any(key.startswith(("kafka.sasl", "kafka.ssl")) for key in options)


def test_producer_gets_sasl_and_ca_file() -> None:
    settings = kafka_client_settings(load_config(overrides=SECURE, environ=SECRETS).kafka)
    assert settings == {
        "bootstrap_servers": ["k1:9093", "k2:9093"],
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/kafka/ca.pem",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "fraud-job",
        "sasl_plain_password": "kafka-secret",
    }


def test_connector_gets_hosts_dc_auth_tls_and_write_concurrency() -> None:
    config = load_config(overrides=SECURE, environ=SECRETS)
    assert cassandra_connector_settings(config.cassandra) == {
        "spark.cassandra.connection.host": "c1,c2,c3",
        "spark.cassandra.connection.port": "9042",
        "spark.cassandra.output.concurrent.writes": "64",
        "spark.cassandra.output.consistency.level": "LOCAL_QUORUM",
        "spark.cassandra.input.consistency.level": "LOCAL_QUORUM",
        "spark.cassandra.connection.localDC": "dc1",
        "spark.cassandra.auth.username": "fraud",
        "spark.cassandra.auth.password": "cass-secret",
        "spark.cassandra.connection.ssl.enabled": "true",
        "spark.cassandra.connection.ssl.trustStore.path": "/etc/cassandra/truststore.p12",
        "spark.cassandra.connection.ssl.trustStore.password": "ts-secret",
    }
    assert session_settings(config)["spark.sql.session.timeZone"] == "UTC"


def test_python_driver_gets_auth_and_tls() -> None:
    # Contact points must resolve when the cluster object is built (nothing connects here).
    cluster = connect(load_config(overrides=[*SECURE, "cassandra.hosts=127.0.0.1"], environ=SECRETS).cassandra)
    assert cluster.contact_points == ["127.0.0.1"]
    assert cluster.ssl_context is not None
    assert cluster.auth_provider.username == "fraud"


QUOTED = r'"((?:[^"\\]|\\.)*)"'  # a double-quoted JAAS value: no bare quote, escapes allowed
JAAS_LINE = re.compile(rf"(\S+) required username={QUOTED} password={QUOTED};")


def jaas_option_values(jaas: str) -> dict[str, str]:
    """The credentials of a JAAS config line as Kafka's parser (java.io.StreamTokenizer) reads
    them: in a double-quoted value, a backslash takes the next character literally."""
    parsed = JAAS_LINE.fullmatch(jaas)
    assert parsed, jaas
    username, password = (re.sub(r"\\(.)", r"\1", value) for value in parsed.groups()[1:])
    return {"username": username, "password": password}


def unvalidated_copy(kafka: KafkaConfig, **changes: Any) -> KafkaConfig:
    """``kafka`` with ``changes`` the config's validation never saw."""
    return kafka.model_copy(update=changes)


@pytest.mark.parametrize(
    "password",
    ['pa"ss', "back\\slash", "ends with backslash\\", '\\"; evil=true; x="', "plain"],
)
def test_jaas_config_escapes_the_credentials(password: str) -> None:
    kafka = load_config(
        overrides=["kafka.sasl_mechanism=PLAIN", 'kafka.sasl_username=fraud"job'],
        environ={"FRAUDSHOP_KAFKA__SASL_PASSWORD": password},
    ).kafka
    jaas = kafka_source_options(kafka)["kafka.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert jaas_option_values(jaas) == {"username": 'fraud"job', "password": password}


def test_jaas_quoting_escapes_backslash_before_quote() -> None:
    assert jaas_quoted('a\\"b') == '"a\\\\\\"b"'


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [
        ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule"),
        ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ],
)
def test_each_mechanism_gets_its_login_module(mechanism: str, module: str) -> None:
    kafka = load_config(overrides=[f"kafka.sasl_mechanism={mechanism}"], environ={}).kafka
    assert kafka_source_options(kafka)["kafka.sasl.jaas.config"].startswith(f"{module} required ")


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER", "scram-sha-512", "SCRAM"])
def test_other_mechanisms_are_refused_not_given_scram(mechanism: str) -> None:
    # Refused by the config's validation, or, if it let one through, by the settings themselves.
    with pytest.raises(ValueError, match="sasl_mechanism"):
        kafka = load_config(overrides=[f"kafka.sasl_mechanism={mechanism}"], environ={}).kafka
        kafka_source_options(kafka)
    kafka = unvalidated_copy(load_config(environ={}).kafka, sasl_mechanism=mechanism)
    with pytest.raises(UnsupportedSaslMechanismError, match=mechanism):
        kafka_source_options(kafka)
    with pytest.raises(UnsupportedSaslMechanismError):
        kafka_client_settings(kafka)


def test_the_config_accepts_exactly_the_mechanisms_with_a_login_module() -> None:
    assert set(get_args(SaslMechanism)) == {"", *LOGIN_MODULES}
