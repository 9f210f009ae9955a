"""KRaft Kafka nodes (broker + controller) from the kafka_2.13 Maven jars: the local stack's one node,
or one of the lab cluster's (:mod:`fraudshop.lab.stack.cluster`)."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import subprocess
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KafkaNode:
    """One node: its name (of its pid file and state directory), its id, the address its client
    (``port``) and controller listeners bind, and every voter of the controller quorum."""

    name: str
    node_id: int
    host: str
    port: int
    #: (node id, address) of each controller: this node's quorum.
    voters: tuple[tuple[int, str], ...]


def bootstrap_addresses(config: Config) -> list[tuple[str, int]]:
    """``kafka.bootstrap_servers`` as (host, port) pairs."""
    servers = (server.strip().rpartition(":") for server in config.kafka.bootstrap_servers.split(","))
    return [(host, int(port)) for host, _, port in servers]


def local_node(config: Config) -> KafkaNode:
    """The local stack's only node, on the first bootstrap server's port."""
    return KafkaNode("kafka", 1, "127.0.0.1", config.kafka.first_port, ((1, "127.0.0.1"),))


def cluster_nodes(config: Config) -> list[KafkaNode]:
    """One node per bootstrap server, every one a voter of the controller quorum."""
    addresses = bootstrap_addresses(config)
    voters = tuple((node_id, host) for node_id, (host, _) in enumerate(addresses, start=1))
    return [
        KafkaNode(f"kafka-{node_id}", node_id, host, port, voters)
        for node_id, (host, port) in enumerate(addresses, start=1)
    ]


def _home(config: Config, node: KafkaNode) -> Path:
    return config.stack.state_dir / node.name


def _java(config: Config, node: KafkaNode, main_class: str, *args: str) -> tuple[str, ...]:
    home = _home(config, node)
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


def kafka_server(config: Config, node: KafkaNode | None = None) -> ServerProcess:
    """The server of ``node``, by default the local stack's."""
    node = node or local_node(config)
    home = _home(config, node)
    return ServerProcess(
        name=node.name,
        command=_java(config, node, "kafka.Kafka", str(home / "server.properties")),
        host=node.host,
        port=node.port,
        server_log=home / "logs" / "server.log",
        ready_line=READY_LINE,
        run_dir=config.stack.state_dir / "run",
    )


def _cluster_id(config: Config, node: KafkaNode) -> str:
    """The id every node of one Kafka cluster is formatted with: derived from where the cluster lives
    (its state directory and quorum), so each node computes the same one."""
    where = f"{config.stack.state_dir}|{node.voters}".encode()
    return base64.urlsafe_b64encode(hashlib.sha256(where).digest()[:16]).rstrip(b"=").decode().replace("-", "A")


def prepare_kafka(config: Config, node: KafkaNode | None = None) -> None:
    """Resolve the jars, write ``node``'s server.properties (by default the local stack's node) from the
    config and format its storage once."""
    node = node or local_node(config)
    home = _home(config, node)
    resolve_classpath("kafka", ARTIFACTS, config.stack.cache_dir)
    properties = home / "server.properties"
    home.mkdir(parents=True, exist_ok=True)
    # Internal topics are replicated like fraudshop's own, on at most as many nodes as there are.
    replication = min(config.kafka.topic_replication_factor, len(node.voters))
    properties.write_text(
        render_stack_conf(
            "kafka-server.properties",
            node_id=node.node_id,
            voters=",".join(f"{voter}@{host}:{config.stack.kafka_controller_port}" for voter, host in node.voters),
            host=node.host,
            port=node.port,
            controller_port=config.stack.kafka_controller_port,
            data_dir=home / "data",
            partitions=config.kafka.topic_partitions,
            replication_factor=replication,
            min_insync_replicas=min(max(config.kafka.topic_min_insync_replicas, 1), replication),
            controlled_shutdown=str(len(node.voters) == 1).lower(),
        )
    )
    if not (home / "data" / "meta.properties").exists():
        log.info("formatting Kafka storage in %s", home / "data")
        cluster_id = _cluster_id(config, node)
        subprocess.run(
            _java(config, node, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)),
            check=True,
            stdout=subprocess.DEVNULL,
        )
