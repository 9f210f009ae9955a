"""The lab cluster: the job's path beyond one machine, run on this one with real distributed engines
on loopback addresses (Linux routes all of 127.0.0.0/8 to the loopback interface: no alias to add).

- a Cassandra ring: a node per ``cassandra.hosts`` address, every one on ``cassandra.port`` and
  ``stack.cassandra_storage_port``, the data centre ``cassandra.local_dc``, a rack each;
- Kafka: a KRaft node per ``kafka.bootstrap_servers`` entry, each broker and controller (a quorum
  that keeps electing leaders with one node lost);
- Spark standalone: a master at ``job.spark_master`` and a worker per ``cluster.spark_worker_hosts``.

The packaged ``conf/cluster.toml`` configures it (three of each, two workers); every fraudshop command
runs on it with ``--config`` naming that file. State, logs and pid files live under ``stack.state_dir``."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

from fraudshop.config import Config, load_config
from fraudshop.lab.console import step
from fraudshop.lab.stack.cassandra import CassandraNode, cassandra_server, prepare_cassandra, ring_nodes
from fraudshop.lab.stack.conf import CLUSTER_CONFIG
from fraudshop.lab.stack.kafka import KafkaNode, cluster_nodes, kafka_server, prepare_kafka
from fraudshop.lab.stack.process import Launched, ServerProcess
from fraudshop.lab.stack.spark import master_server, prepare_spark, worker_servers

log = logging.getLogger(__name__)


class ClusterConfigError(ValueError):
    """The config does not describe a cluster this machine can run: its addresses are not loopback."""


def cluster_config(overrides: tuple[str, ...] = ()) -> Config:
    """The lab cluster's config (:data:`CLUSTER_CONFIG`), the process's environment and ``overrides`` over it."""
    return load_config(path=CLUSTER_CONFIG, overrides=overrides)


@dataclass(frozen=True)
class ClusterNode:
    """A server of the cluster, the engine it belongs to and how its files are prepared."""

    engine: str  # "cassandra", "kafka" or "spark"
    server: ServerProcess
    prepare: Callable[[], None]


def _require_loopback(key: str, hosts: list[str]) -> None:
    for host in hosts:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ClusterConfigError(
                f"{key} has {host!r}: the lab cluster runs on loopback addresses (127.x.y.z) only; "
                "a real cluster is started by its own tooling"
            )
    if len(set(hosts)) != len(hosts):
        raise ClusterConfigError(f"{key} names an address twice: each node of the lab cluster has its own")


def cassandra_nodes(config: Config) -> list[CassandraNode]:
    _require_loopback("cassandra.hosts", config.cassandra.host_list)
    return ring_nodes(config.cassandra.host_list)


def kafka_nodes(config: Config) -> list[KafkaNode]:
    nodes = cluster_nodes(config)
    _require_loopback("kafka.bootstrap_servers", [node.host for node in nodes])
    return nodes


def cluster_nodes_of(config: Config) -> list[ClusterNode]:
    """Every server of the cluster, in the order they start."""
    _require_loopback("cluster.spark_worker_hosts", config.cluster.worker_hosts)
    nodes = [
        ClusterNode("cassandra", cassandra_server(config, node), partial(prepare_cassandra, config, node))
        for node in cassandra_nodes(config)
    ]
    nodes += [
        ClusterNode("kafka", kafka_server(config, node), partial(prepare_kafka, config, node))
        for node in kafka_nodes(config)
    ]
    spark = [master_server(config), *worker_servers(config)]
    _require_loopback("job.spark_master", [spark[0].host])
    nodes += [ClusterNode("spark", server, partial(prepare_spark, config)) for server in spark]
    return nodes


def node_named(config: Config, name: str) -> ClusterNode:
    """The node called ``name`` (``cassandra-3``, ``kafka-1``, ``spark-worker-2``, ...)."""
    nodes = {node.server.name: node for node in cluster_nodes_of(config)}
    if name not in nodes:
        raise ValueError(f"no node {name!r} in the lab cluster; its nodes: {', '.join(nodes)}")
    return nodes[name]


def cluster_up(config: Config) -> dict[str, float]:
    """Start whatever is not running; return each server's seconds to readiness (0 if it was up).

    The Cassandra nodes start one after the other, the seed first (each joins a ring that is up); the
    Kafka nodes together (none is ready before a quorum of controllers is); then the Spark master and
    its workers."""
    nodes = cluster_nodes_of(config)
    timeout = config.stack.start_timeout_seconds
    ready_after: dict[str, float] = {}
    for engine in ("cassandra", "kafka", "spark"):
        group = [node for node in nodes if node.engine == engine]
        together = engine == "kafka"
        launched: list[tuple[ClusterNode, Launched | None]] = []
        with step(f"{engine}: starting {len(group)} node(s)") as starting:
            for node in group:
                if not node.server.is_running():
                    node.prepare()
                launch = node.server.launch()
                if together:
                    launched.append((node, launch))
                else:
                    ready_after[node.server.name] = launch.wait_ready(timeout) if launch else 0.0
                    starting.update(f"{engine}: {node.server.name} ready on {node.server.host}:{node.server.port}")
            for node, launch in launched:
                ready_after[node.server.name] = launch.wait_ready(timeout) if launch else 0.0
            starting.update(f"{engine}: {len(group)} node(s) ready")
    return ready_after


def cluster_down(config: Config) -> None:
    """Stop every server: Spark first (the job's executors), then Kafka (no new work), then Cassandra.
    An engine's nodes stop together: a Kafka node left alone waits for a quorum to shut down cleanly."""
    nodes = cluster_nodes_of(config)
    for engine in ("spark", "kafka", "cassandra"):
        group = [node.server for node in nodes if node.engine == engine]
        with ThreadPoolExecutor(len(group)) as stopping:
            list(stopping.map(ServerProcess.stop, group))


def cluster_status(config: Config) -> list[str]:
    """A line per server, then the memory every running one uses (resident set, its children included)."""
    lines, total = [], 0
    for node in cluster_nodes_of(config):
        process = node.server.process()
        memory = _resident_bytes(process) if process else 0
        total += memory
        lines.append(node.server.status() + (f", {memory / 2**30:.2f} GiB resident" if process else ""))
    # A worker's executors are its children: counted with it. The job's driver runs where it is submitted.
    lines.append(f"memory: {total / 2**30:.1f} GiB resident in all (executors included, the job's driver not)")
    return lines


def cluster_is_running(config: Config) -> bool:
    return all(node.server.is_running() for node in cluster_nodes_of(config))


def _resident_bytes(process: psutil.Process) -> int:
    total = 0
    for member in (process, *process.children(recursive=True)):
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue  # it ended while we looked
    return total


def shared_directory(config: Config) -> Path:
    """Where the cluster's nodes share files (checkpoints): stands in for HDFS, S3 or a shared volume."""
    return config.stack.state_dir / "shared"
