"""The local stack's Cassandra: one node run from the cassandra-all Maven jars."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fraudshop.config import Config, versions
from fraudshop.lab.stack.conf import render_stack_conf, stack_conf
from fraudshop.lab.stack.jars import Artifact, classpath_dir, resolve_classpath
from fraudshop.lab.stack.process import ServerProcess

ARTIFACTS = (Artifact("org.apache.cassandra", "cassandra-all", versions.CASSANDRA),)
READY_LINE = re.compile(r"Startup complete")


def _home(config: Config) -> Path:
    return config.stack.state_dir / "cassandra"


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


def cassandra_server(config: Config) -> ServerProcess:
    home = _home(config)
    command = (
        "java",
        "-Xms256m",
        f"-Xmx{config.stack.cassandra_heap}",
        f"-XX:ErrorFile={home / 'logs' / 'hs_err_%p.log'}",
        *_jvm_options(),
        f"-XX:ActiveProcessorCount={node_processors()}",
        f"-Dcassandra.config=file://{home / 'conf' / 'cassandra.yaml'}",
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
        name="cassandra",
        command=command,
        host="127.0.0.1",
        port=config.cassandra.port,
        server_log=home / "logs" / "system.log",
        ready_line=READY_LINE,
        run_dir=config.stack.state_dir / "run",
    )


def prepare_cassandra(config: Config) -> None:
    """Resolve the jars and write cassandra.yaml from the config."""
    home = _home(config)
    resolve_classpath("cassandra", ARTIFACTS, config.stack.cache_dir)
    for directory in ("conf", "triggers", "logs"):
        (home / directory).mkdir(parents=True, exist_ok=True)
    (home / "conf" / "cassandra.yaml").write_text(
        render_stack_conf(
            "cassandra.yaml",
            home=home,
            native_port=config.cassandra.port,
            storage_port=config.stack.cassandra_storage_port,
            concurrent_writes=node_processors(),
        )
    )
