"""The lab cluster's smoke test: the README's cluster commands, from `fraudshop cluster up` to `down`,
with one micro-batch of the spark-submitted job on the Spark standalone master, its executors on two
workers, against a three-node Cassandra ring (NetworkTopologyStrategy, RF 3) and three Kafka nodes
(replication factor 3, min.insync.replicas 2). About 3 minutes: skip it with ``-m "not cluster"``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from fraudshop.cli import main
from fraudshop.config import Config, load_config
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.launcher import start_job, stop_job
from fraudshop.lab.stack.cluster import cluster_down, cluster_is_running, cluster_nodes_of
from fraudshop.lab.stack.conf import CLUSTER_CONFIG
from fraudshop.lab.waiting import wait_until
from fraudshop.model.changes import ProfileChange
from tests.integration.conftest import TEST_CLUSTER_SETTINGS

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

#: The checkout: the README zips its fraudshop/ directory for --py-files.
CHECKOUT = Path(__file__).resolve().parents[2]


def cluster_for_tests(*settings: str) -> Config:
    return load_config(path=CLUSTER_CONFIG, overrides=(*TEST_CLUSTER_SETTINGS, *settings), environ={})


def fraudshop(*arguments: str) -> None:
    """A fraudshop command, as the README shows it, on the test cluster's config."""
    overrides = [argument for setting in TEST_CLUSTER_SETTINGS for argument in ("--set", setting)]
    assert main([*arguments, "--config", str(CLUSTER_CONFIG), *overrides]) == 0, arguments


@pytest.fixture(scope="module")
def lab_cluster() -> Iterator[Config]:
    """The test cluster, started afresh (its state directory emptied) and stopped afterwards."""
    config = cluster_for_tests()
    started_here = not cluster_is_running(config)
    if started_here:
        cluster_down(config)  # any node left from an interrupted run
        shutil.rmtree(config.stack.state_dir, ignore_errors=True)
    try:
        fraudshop("cluster", "up")
    except BaseException:
        cluster_down(config)  # the nodes that did start
        raise
    yield config
    if started_here:
        fraudshop("cluster", "down")
        assert not any(node.server.is_running() for node in cluster_nodes_of(config))
        shutil.rmtree(config.stack.state_dir, ignore_errors=True)


def spark_master_state(config: Config) -> dict[str, object]:
    """The standalone master's state, from its web UI's JSON."""
    with urllib.request.urlopen(f"http://127.0.0.1:{config.cluster.spark_webui_port}/json/", timeout=10) as answer:
        state: dict[str, object] = json.load(answer)
    return state


def test_one_batch_through_the_job_on_the_standalone_master_against_the_ring(
    lab_cluster: Config, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = (
        f"cassandra.keyspace=cluster_{suffix}",
        f"kafka.topic=transaction_{suffix}",
        f"kafka.notifications_topic=notifications_{suffix}",
        f"job.checkpoint_dir={lab_cluster.stack.state_dir / 'shared' / suffix}",
        f"job.py_files={tmp_path / 'fraudshop.zip'}",
    )
    config = cluster_for_tests(*settings)
    master = spark_master_state(config)
    assert master["aliveworkers"] == 2, master

    # The README's steps: the schema, the package zipped for --py-files, the job submitted.
    fraudshop("schema", "apply", *(argument for setting in settings for argument in ("--set", setting)))
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-c", str(tmp_path / "fraudshop.zip"), "fraudshop/"],
        cwd=CHECKOUT,
        check=True,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    with cassandra_session(config.cassandra) as session:
        keyspace = session.cluster.metadata.keyspaces[config.cassandra.keyspace]
        assert keyspace.replication_strategy.dc_replication_factors == {"dc1": 3}
        record_profile_change(session, config.cassandra.keyspace, ProfileChange("ACC-1", "CUST-1", "email", now))
        ensure_topic(config.kafka)  # as `fraudshop produce` does
        job_log = tmp_path / "job.log"
        with open(job_log, "wb") as output:
            job = start_job(config, output)
        try:
            transactions = [
                {
                    "account_no": f"ACC-{index % 5}",
                    "tranpostdt": (now + timedelta(seconds=index)).isoformat(timespec="milliseconds"),
                    "tranid": f"T-{index}",
                    "amount": 10.0 + index,
                    "merchant": "CLUSTER SHOP",
                    "merchant_id": "M-CLUSTER",
                }
                for index in range(50)
            ]
            send_transactions(config.kafka, transactions, rate=0)
            count = SimpleStatement(
                f"SELECT count(*) FROM {config.cassandra.keyspace}.transaction",
                consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            )

            def stored() -> bool:
                assert job.poll() is None, job_log.read_text()[-5000:]
                return int(session.execute(count).one()[0]) == len(transactions)

            wait_until(stored, 300, "the job's first batch on the cluster", interval=2)
            alerts = SimpleStatement(
                f"SELECT tranid FROM {config.cassandra.keyspace}.cust_fraud WHERE customer_id = 'CUST-1'",
                consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            )
            wait_until(lambda: len(list(session.execute(alerts))) == 10, 60, "the alerts of CUST-1", interval=1)
            # Every replica took every write: a read at ALL needs all three.
            count.consistency_level = ConsistencyLevel.ALL
            assert int(session.execute(count).one()[0]) == len(transactions)
            # The job ran as an application of the master, on executors of both workers.
            applications = spark_master_state(config)["activeapps"]
            assert isinstance(applications, list) and len(applications) == 1, applications
            assert applications[0]["cores"] == 2, applications
        finally:
            stop_job(job)
    admin = KafkaAdminClient(**kafka_client_settings(config.kafka))
    try:
        (topic,) = admin.describe_topics([config.kafka.topic])
        assert {len(partition["replica_nodes"]) for partition in topic["partitions"]} == {3}, topic
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, config.kafka.topic)])
        assert described["topic"][config.kafka.topic]["min.insync.replicas"]["value"] == "2", described
    finally:
        admin.close()


def test_the_cluster_drill_loses_nothing_when_a_cassandra_node_is_killed(lab_cluster: Config, tmp_path: Path) -> None:
    """`fraudshop faults --cluster` in small: one fault, the drill's exact checks and every replica's."""
    results = tmp_path / "drill.json"
    fraudshop(
        "faults",
        "--cluster",
        "--fault",
        "kill-cassandra-node",
        "--transactions",
        "1000",
        "--accounts",
        "100",
        "--malformed",
        "10",
        "--results",
        str(results),
        "--work-dir",
        str(lab_cluster.stack.state_dir / "shared" / "drill"),
    )
    figures = json.loads(results.read_text())
    assert figures["passed"] and figures["transactions_lost"] == 0 == figures["transactions_extra"]
    (recovery,) = figures["recoveries"]
    assert recovery["node"] == "cassandra-3" and recovery["seconds_to_next_batch"] > 0
    assert figures["replica_transactions_missing"] == {"127.0.0.1": 0, "127.0.0.2": 0, "127.0.0.3": 0}
    assert figures["transactions_read_at_all"] == 1000 and figures["kafka_records_extra"] == 0
