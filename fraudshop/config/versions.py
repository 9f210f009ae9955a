"""Every external version fraudshop depends on. PySpark is pinned in ``pyproject.toml`` to :data:`SPARK`;
the connector jars must match its Scala binary and Spark versions exactly, so they are derived here."""

from __future__ import annotations

#: Spark (PySpark from PyPI ships Scala 2.12 builds for the 3.5 line).
SPARK = "3.5.7"
SCALA_BINARY = "2.12"

#: Newest released Spark Cassandra Connector on Maven Central; it targets Spark 3.5.
SPARK_CASSANDRA_CONNECTOR = "3.5.1"

#: Embedded local stack: a KRaft Kafka broker and a Cassandra node, run from Maven jars.
KAFKA = "4.4.0"
KAFKA_SCALA_BINARY = "2.13"
CASSANDRA = "5.0.9"
# Kafka's POM brings no logging backend; these are the ones the broker runs with.
LOG4J2 = "2.25.5"
SLF4J = "2.0.17"

SPARK_PACKAGES: tuple[str, ...] = (
    f"com.datastax.spark:spark-cassandra-connector_{SCALA_BINARY}:{SPARK_CASSANDRA_CONNECTOR}",
    f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_BINARY}:{SPARK}",
)
