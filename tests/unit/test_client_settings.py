"""Hosts, credentials and TLS from config reach every client: Spark's Kafka source, the Spark
Cassandra Connector, kafka-python and cassandra-driver."""

from __future__ import annotations

from fraudshop.cassandra_client import connect
from fraudshop.config import load_config
from fraudshop.producer import kafka_client_settings
from fraudshop.spark_session import cassandra_connector_settings, session_settings
from fraudshop.streaming import kafka_source_options

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


def test_connector_gets_hosts_dc_auth_and_tls() -> None:
    config = load_config(overrides=SECURE, environ=SECRETS)
    assert cassandra_connector_settings(config.cassandra) == {
        "spark.cassandra.connection.host": "c1,c2,c3",
        "spark.cassandra.connection.port": "9042",
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
