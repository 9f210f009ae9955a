"""Cassandra nodes run from the cassandra-all Maven jars: the local stack's one node, or one node of
the lab cluster's ring (:mod:`fraudshop.lab.stack.cluster`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fraudshop.config import Config, versions
from fraudshop.lab.stack.conf import render_stack_conf, stack_conf
from fraudshop.lab.stack.jars import Artifact, classpath_dir, resolve_classpath
from fraudshop.lab.stack.process import ServerProcess

ARTIFACTS = (Artifact("org.apache.cassandra", "cassandra-all", versions.CASSANDRA),)
READY_LINE = re.compile(r"Startup complete")


#: The Murmur3 partitioner's token range: the ring's nodes take evenly spaced tokens in it.
_FIRST_TOKEN, _TOKENS = -(2**63), 2**64


@dataclass(frozen=True)
class CassandraNode:
    """One node: its name (of its pid file and state directory), its address (listen, native and
    storage ports all on it), the seeds it joins through and its place in the ring."""

    name: str
    address: str
    seeds: tuple[str, ...]
    initial_token: int
    #: GossipingPropertyFileSnitch's rack; "" = SimpleSnitch (one node, data centre "datacenter1").
    rack: str = ""

    @property
    def in_ring(self) -> bool:
        return bool(self.rack)


def local_node() -> CassandraNode:
    """The local stack's only node."""
    return CassandraNode("cassandra", "127.0.0.1", ("127.0.0.1",), initial_token=0)


def ring_nodes(addresses: list[str]) -> list[CassandraNode]:
    """A ring of one node per address, each on a rack of its own, the first the seed every other joins."""
    return [
        CassandraNode(
            f"cassandra-{index}",
            address,
            seeds=(addresses[0],),
            initial_token=_FIRST_TOKEN + (index - 1) * (_TOKENS // len(addresses)),
            rack=f"rack{index}",
        )
        for index, address in enumerate(addresses, start=1)
    ]


def _home(config: Config, node: CassandraNode) -> Path:
    return config.stack.state_dir / node.name


def node_processors() -> int:
    """The processors this node may use (its CPU affinity): its writer threads and the JVM's view.

    Cassandra 5.0.9's vector index builds its graph with a jvector pool of processors + 1 objects and
    fails a write past it (CASSANDRA-21644, fixed after 5.0.9). Writers are ``concurrent_writes``
    threads, plus a flush: with as many writers as processors, and the JVM told that number, the
    pool is never exceeded, also when the node replays its commit log on every writer at start-up.
    """
    return len(os.sched_getaffinity(0))


def _jvm_options() -> list[str]:
    lines = stack_conf("cassandra-jvm17.options").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def cassandra_server(config: Config, node: CassandraNode | None = None) -> ServerProcess:
    """The server of ``node``, by default the local stack's."""
    node = node or local_node()
    home = _home(config, node)
    command = (
        "java",
        "-Xms256m",
        f"-Xmx{config.stack.cassandra_heap}",
        f"-XX:ErrorFile={home / 'logs' / 'hs_err_%p.log'}",
        *_jvm_options(),
        f"-XX:ActiveProcessorCount={node_processors()}",
        f"-Dcassandra.config=file://{home / 'conf' / 'cassandra.yaml'}",
        f"-Dcassandra-rackdc.properties=file://{home / 'conf' / 'cassandra-rackdc.properties'}",
        f"-Dlogback.configurationFile=file://{stack_conf('cassandra-logback.xml')}",
        f"-Dcassandra.logdir={home / 'logs'}",
        f"-Dcassandra.storagedir={home}",
        # Keeps stdout open (a daemon closes it once set up): the daemon's start-up lines,
        # "Startup complete" among them, go to the console log the stack waits on.
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.triggers_dir={home / 'triggers'}",
        "-cp",
        f"{classpath_dir('cassandra', ARTIFACTS, config.stack.cache_dir)}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    )
    return ServerProcess(
        name=node.name,
        command=command,
        host=node.address,
        port=config.cassandra.port,
        server_log=home / "logs" / "system.log",
        ready_line=READY_LINE,
        run_dir=config.stack.state_dir / "run",
    )


def prepare_cassandra(config: Config, node: CassandraNode | None = None) -> None:
    """Resolve the jars and write ``node``'s cassandra.yaml (by default the local stack's node) from the config."""
    node = node or local_node()
    home = _home(config, node)
    resolve_classpath("cassandra", ARTIFACTS, config.stack.cache_dir)
    for directory in ("conf", "triggers", "logs"):
        (home / directory).mkdir(parents=True, exist_ok=True)
    (home / "conf" / "cassandra.yaml").write_text(
        render_stack_conf(
            "cassandra.yaml",
            home=home,
            cluster_name="fraudshop-lab-cluster" if node.in_ring else "fraudshop-local",
            initial_token=node.initial_token,
            snitch="GossipingPropertyFileSnitch" if node.in_ring else "SimpleSnitch",
            address=node.address,
            seeds=",".join(f"{seed}:{config.stack.cassandra_storage_port}" for seed in node.seeds),
            hinted_handoff=str(node.in_ring).lower(),
            native_port=config.cassandra.port,
            storage_port=config.stack.cassandra_storage_port,
            concurrent_writes=node_processors(),
        )
    )
    # The ring's data centre is the one the clients route to: one name for both.
    (home / "conf" / "cassandra-rackdc.properties").write_text(
        render_stack_conf("cassandra-rackdc.properties", dc=config.cassandra.local_dc, rack=node.rack or "rack1")
    )
