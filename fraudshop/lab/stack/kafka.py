"""The local stack's Kafka: one KRaft node (broker + controller) from the kafka_2.13 Maven jars."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import uuid
from pathlib import Path

from fraudshop.config import Config, versions
from fraudshop.lab.stack.conf import render_stack_conf, stack_conf
from fraudshop.lab.stack.jars import Artifact, classpath_dir, resolve_classpath
from fraudshop.lab.stack.process import ServerProcess

log = logging.getLogger(__name__)

ARTIFACTS = (
    Artifact("org.apache.kafka", f"kafka_{versions.KAFKA_SCALA_BINARY}", versions.KAFKA),
    # kafka_2.13's POM brings slf4j-api 1.7, with which log4j's slf4j2 binding silently logs nothing.
    Artifact("org.slf4j", "slf4j-api", versions.SLF4J),
    Artifact("org.apache.logging.log4j", "log4j-core", versions.LOG4J2),
    Artifact("org.apache.logging.log4j", "log4j-slf4j2-impl", versions.LOG4J2),
)
READY_LINE = re.compile(r"\[KafkaRaftServer nodeId=\d+\] Kafka Server started")


def _home(config: Config) -> Path:
    return config.stack.state_dir / "kafka"


def _java(config: Config, main_class: str, *args: str) -> tuple[str, ...]:
    home = _home(config)
    return (
        "java",
        f"-Xms{config.stack.kafka_heap}",
        f"-Xmx{config.stack.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",  # plain 127.0.0.1 sockets, as Cassandra's
        f"-Dkafka.logs.dir={home / 'logs'}",
        f"-Dlog4j2.configurationFile={stack_conf('kafka-log4j2.xml')}",
        "-cp",
        f"{classpath_dir('kafka', ARTIFACTS, config.stack.cache_dir)}/*",
        main_class,
        *args,
    )


def kafka_server(config: Config) -> ServerProcess:
    home = _home(config)
    return ServerProcess(
        name="kafka",
        command=_java(config, "kafka.Kafka", str(home / "server.properties")),
        host="127.0.0.1",
        port=config.kafka.first_port,
        server_log=home / "logs" / "server.log",
        ready_line=READY_LINE,
        run_dir=config.stack.state_dir / "run",
    )


def prepare_kafka(config: Config) -> None:
    """Resolve the jars, write server.properties from the config and format storage once."""
    home = _home(config)
    resolve_classpath("kafka", ARTIFACTS, config.stack.cache_dir)
    properties = home / "server.properties"
    home.mkdir(parents=True, exist_ok=True)
    properties.write_text(
        render_stack_conf(
            "kafka-server.properties",
            port=config.kafka.first_port,
            controller_port=config.stack.kafka_controller_port,
            data_dir=home / "data",
            partitions=config.kafka.topic_partitions,
        )
    )
    if not (home / "data" / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode().replace("-", "A")
        log.info("formatting Kafka storage in %s", home / "data")
        subprocess.run(
            _java(config, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)),
            check=True,
            stdout=subprocess.DEVNULL,
        )
