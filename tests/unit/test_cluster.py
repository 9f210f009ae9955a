"""The lab cluster's topology, servers' files and commands, derived from its config (conf/cluster.toml):
no server starts here (tests/integration/test_cluster.py starts one)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from fraudshop.config import ConfigError, load_config
from fraudshop.config.arguments import load_config_from_args
from fraudshop.jobs.launcher import job_command, job_environment
from fraudshop.lab.stack.cassandra import prepare_cassandra, ring_nodes
from fraudshop.lab.stack.cluster import ClusterConfigError, cassandra_nodes, cluster_nodes_of, kafka_nodes, node_named
from fraudshop.lab.stack.conf import CLUSTER_CONFIG
from fraudshop.lab.stack.kafka import prepare_kafka
from fraudshop.lab.stack.spark import master_server, worker_servers


def cluster(tmp_path: Path, *settings: str) -> Any:
    return load_config(path=CLUSTER_CONFIG, overrides=(f"stack.state_dir={tmp_path}", *settings), environ={})


def test_the_ring_spaces_its_tokens_evenly_and_joins_through_the_first_node() -> None:
    nodes = ring_nodes(["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    assert [node.initial_token for node in nodes] == [-(2**63), -(2**63) + 2**64 // 3, -(2**63) + 2 * (2**64 // 3)]
    assert {node.seeds for node in nodes} == {("127.0.0.1",)}
    assert [node.rack for node in nodes] == ["rack1", "rack2", "rack3"]
    assert [node.name for node in nodes] == ["cassandra-1", "cassandra-2", "cassandra-3"]


def test_each_node_has_its_files_filled_from_the_cluster_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cluster(tmp_path)
    formatted: list[list[str]] = []
    monkeypatch.setattr("fraudshop.lab.stack.kafka.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.cassandra.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.kafka.subprocess.run", lambda command, **kwargs: formatted.append(command))
    for node in cassandra_nodes(config):
        prepare_cassandra(config, node)
    for kafka_node in kafka_nodes(config):
        prepare_kafka(config, kafka_node)

    second = (tmp_path / "cassandra-2" / "conf" / "cassandra.yaml").read_text()
    for line in (
        "listen_address: 127.0.0.2\n",
        "rpc_address: 127.0.0.2\n",
        "native_transport_port: 9142\n",
        "storage_port: 7100\n",
        '- seeds: "127.0.0.1:7100"',
        "endpoint_snitch: GossipingPropertyFileSnitch\n",
        "hinted_handoff_enabled: true\n",
        f"initial_token: {-(2**63) + 2**64 // 3}\n",
        f"data_file_directories:\n  - {tmp_path / 'cassandra-2'}/data\n",
    ):
        assert line in second
    # The ring's data centre is the one the clients route to.
    rackdc = (tmp_path / "cassandra-2" / "conf" / "cassandra-rackdc.properties").read_text()
    assert f"dc={config.cassandra.local_dc}\nrack=rack2\n" in rackdc and config.cassandra.local_dc == "dc1"

    broker = (tmp_path / "kafka-2" / "server.properties").read_text()
    for line in (
        "node.id=2\n",
        "process.roles=broker,controller\n",
        "controller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.2:9193,3@127.0.0.3:9193\n",
        "listeners=PLAINTEXT://127.0.0.2:9192,CONTROLLER://127.0.0.2:9193\n",
        "default.replication.factor=3\n",
        "min.insync.replicas=2\n",
        "offsets.topic.replication.factor=3\n",
        "controlled.shutdown.enable=false\n",
        f"log.dirs={tmp_path / 'kafka-2' / 'data'}\n",
    ):
        assert line in broker
    # Every node of one Kafka cluster is formatted with the same cluster id.
    cluster_ids = {command[command.index("-t") + 1] for command in formatted}
    assert len(formatted) == 3 and len(cluster_ids) == 1


def test_the_local_stack_keeps_its_single_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(overrides=(f"stack.state_dir={tmp_path}",), environ={})
    monkeypatch.setattr("fraudshop.lab.stack.cassandra.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.kafka.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.kafka.subprocess.run", lambda *args, **kwargs: None)
    prepare_cassandra(config)
    prepare_kafka(config)
    node = (tmp_path / "cassandra" / "conf" / "cassandra.yaml").read_text()
    assert "endpoint_snitch: SimpleSnitch\n" in node and "hinted_handoff_enabled: false\n" in node
    assert "listen_address: 127.0.0.1\n" in node and "initial_token: 0\n" in node
    broker = (tmp_path / "kafka" / "server.properties").read_text()
    assert (
        "node.id=1\n" in broker and "default.replication.factor=1\n" in broker and "min.insync.replicas=1\n" in broker
    )


def test_the_spark_daemons_bind_their_own_addresses_and_the_workers_join_the_master(tmp_path: Path) -> None:
    config = cluster(tmp_path)
    master = master_server(config)
    assert (master.host, master.port) == ("127.0.0.1", 7077)
    assert master.command[1:] == ("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "7077",
                                  "--webui-port", "8180")  # fmt: skip
    workers = worker_servers(config)
    assert [(worker.name, worker.host, worker.port) for worker in workers] == [
        ("spark-worker-1", "127.0.0.2", 7078),
        ("spark-worker-2", "127.0.0.3", 7078),
    ]
    for index, worker in enumerate(workers, start=1):
        assert worker.command[-1] == "spark://127.0.0.1:7077"
        assert worker.command[worker.command.index("--webui-port") + 1] == str(8180 + index)
        assert worker.command[worker.command.index("--cores") + 1] == "1"
        assert worker.environment["SPARK_LOCAL_IP"] == worker.host
        assert worker.environment["SPARK_DAEMON_MEMORY"] == "256m"
    assert [node.server.name for node in cluster_nodes_of(config)] == [
        *(f"cassandra-{n}" for n in (1, 2, 3)),
        *(f"kafka-{n}" for n in (1, 2, 3)),
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
    ]
    assert node_named(config, "kafka-2").server.host == "127.0.0.2"
    with pytest.raises(ValueError, match=r"no node 'kafka-9'.*cassandra-1"):
        node_named(config, "kafka-9")


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("cassandra.hosts=127.0.0.1,10.0.0.2", "cassandra.hosts"),
        ("kafka.bootstrap_servers=127.0.0.1:9192,kafka2:9192", "kafka.bootstrap_servers"),
        ("cluster.spark_worker_hosts=127.0.0.2,127.0.0.2", "cluster.spark_worker_hosts"),
        ("job.spark_master=spark://spark-master:7077", "job.spark_master"),
    ],
)
def test_a_cluster_beyond_loopback_is_refused_with_its_key(tmp_path: Path, setting: str, key: str) -> None:
    with pytest.raises(ClusterConfigError, match=key):
        cluster_nodes_of(cluster(tmp_path, setting))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            ("kafka.topic_replication_factor=2", "kafka.topic_min_insync_replicas=3"),
            "topic_min_insync_replicas = 3 must be at most topic_replication_factor = 2",
        ),
        (("cluster.spark_worker_memory=lots",), "cluster.spark_worker_memory = lots"),
        (("cluster.spark_worker_hosts=127.0.0.2;rm -rf",), "cluster.spark_worker_hosts = 127.0.0.2;rm -rf"),
        (("cluster.spark_worker_cores=0",), "cluster.spark_worker_cores = 0"),
    ],
)
def test_a_bad_cluster_setting_is_refused_with_its_key_and_value(settings: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=settings, environ={})


def test_the_cluster_command_runs_on_the_cluster_config_unless_another_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[cassandra]\nkeyspace = "mine"\n')
    monkeypatch.delenv("FRAUDSHOP_CONFIG", raising=False)

    def loaded(config: Path | None) -> Any:
        return load_config_from_args(argparse.Namespace(config=config, overrides=[], default_config=CLUSTER_CONFIG))

    assert loaded(None).cassandra.port == 9142
    assert loaded(mine).cassandra.keyspace == "mine" and loaded(mine).cassandra.port == 9042
    monkeypatch.setenv("FRAUDSHOP_CONFIG", str(mine))
    assert loaded(None).cassandra.keyspace == "mine"


def test_the_job_ships_its_zip_and_binds_loopback_on_the_lab_cluster_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    config = cluster(tmp_path, "job.py_files=/tmp/fraudshop.zip")
    command = job_command(config)
    assert command[command.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert command[command.index("--py-files") + 1] == "/tmp/fraudshop.zip"
    assert job_environment(config)["SPARK_LOCAL_IP"] == "127.0.0.1"
    remote = config.with_settings("job.spark_master=spark://spark-master:7077", "job.py_files=")
    assert "--py-files" not in job_command(remote)
    assert "SPARK_LOCAL_IP" not in job_environment(remote)
    standby = config.with_settings("job.spark_master=spark://127.0.0.1:7077,10.0.0.2:7077")
    assert "SPARK_LOCAL_IP" not in job_environment(standby)
