"""SparkSession and spark-submit settings derived from the fraudshop config."""

from __future__ import annotations

import argparse
import logging
import os
import time

from pyspark.sql import SparkSession

from fraudshop.config import CassandraConfig, Config
from fraudshop.jobs.resolved_jars import record_resolution

log = logging.getLogger(__name__)


def cassandra_connector_settings(cassandra: CassandraConfig) -> dict[str, str]:
    settings = {
        "spark.cassandra.connection.host": cassandra.hosts,
        "spark.cassandra.connection.port": str(cassandra.port),
        "spark.cassandra.output.concurrent.writes": str(cassandra.concurrent_writes),
        # Writes and reads at LOCAL_QUORUM (the connector reads at LOCAL_ONE by default): on a ring, a batch
        # then reads every change a quorum acknowledged, also from a replica that was down and still
        # waits for its hints. One node: the same as ONE.
        "spark.cassandra.output.consistency.level": "LOCAL_QUORUM",
        "spark.cassandra.input.consistency.level": "LOCAL_QUORUM",
    }
    if cassandra.local_dc:
        settings["spark.cassandra.connection.localDC"] = cassandra.local_dc
    if cassandra.username:
        settings["spark.cassandra.auth.username"] = cassandra.username
        settings["spark.cassandra.auth.password"] = cassandra.password
    if cassandra.ssl_enabled:
        settings["spark.cassandra.connection.ssl.enabled"] = "true"
        if cassandra.ssl_truststore_path:
            settings["spark.cassandra.connection.ssl.trustStore.path"] = cassandra.ssl_truststore_path
            settings["spark.cassandra.connection.ssl.trustStore.password"] = cassandra.ssl_truststore_password
    return settings


#: Generated classes Spark keeps compiled (a static setting: read when the session starts).
CODEGEN_CACHE_ENTRIES = 2000


def session_settings(config: Config) -> dict[str, str]:
    """Settings every fraudshop SparkSession needs, whatever the cluster."""
    return {
        # Event times are UTC end to end; naive timestamps in records are read as UTC.
        "spark.sql.session.timeZone": "UTC",
        # The connector's direct join: a batch joined on the partition key reads only its accounts' partitions.
        "spark.sql.extensions": "com.datastax.spark.connector.CassandraSparkExtensions",
        "spark.sql.shuffle.partitions": str(config.job.shuffle_partitions),
        # A batch's plans generate more classes than Spark's default cache of 100 holds (the rules' plan alone,
        # about 190): each batch evicted the last one's and compiled them all again (about 1 s a batch, profiled).
        "spark.sql.codegen.cache.maxEntries": str(CODEGEN_CACHE_ENTRIES),
        # A missing optional field must not write a tombstone: reads of an account would wade through them.
        "spark.cassandra.output.ignoreNulls": "true",
        **cassandra_connector_settings(config.cassandra),
    }


def pin_process_time_zone_to_utc() -> None:
    """PySpark turns timestamps into naive datetimes in the Python process's local time zone;
    in UTC they mean the same instant as in Spark and in Cassandra."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def start_job_session(description: str, app_name: str) -> tuple[Config, SparkSession]:
    """How every ``jobs/`` entry point starts: its config (``--config``/``--set``, environment),
    logging, and its SparkSession with Spark's own chatter at WARN."""
    from fraudshop.config.arguments import config_argument_parser

    config, spark, _ = start_job_session_with(config_argument_parser(description=description), app_name)
    return config, spark


def start_job_session_with(
    parser: argparse.ArgumentParser, app_name: str
) -> tuple[Config, SparkSession, argparse.Namespace]:
    """:func:`start_job_session` for an entry point with arguments of its own: ``parser`` has the config's
    options (:func:`~fraudshop.config.arguments.config_argument_parser`) and its own; the parsed
    arguments are returned with the config and the session."""
    from fraudshop.config.arguments import load_config_from_args
    from fraudshop.config.logs import configure_logging

    args = parser.parse_args()
    configure_logging()
    config = load_config_from_args(args)
    pin_process_time_zone_to_utc()
    spark = SparkSession.builder.appName(app_name).config(map={**session_settings(config)}).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        record_resolution(spark.sparkContext.getConf())
    except OSError as error:  # a read-only cache costs the next start its resolution, nothing more
        log.warning("could not record the resolved connector jars: %s", error)
    return config, spark, args
