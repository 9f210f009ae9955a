"""The fault drill on the lab cluster (``fraudshop faults --cluster``): the fault drill's seeded
workload streams through the job on the Spark standalone master, against the three-node ring and the
three Kafka nodes, while a node of each engine is killed with SIGKILL, then the driver:

1. a Cassandra node (not the seed): the job keeps writing at LOCAL_QUORUM; brought back, it receives
   the writes it missed as hints, and each node is then read alone to show it holds every row;
2. the Kafka node leading the topic's first partition: leadership moves, the producer (acks=all,
   idempotent) and the job carry on;
3. a Spark worker whose executor is running tasks of a batch: the tasks run again on the other
   worker's executor and the batch completes;
4. the driver (the job's process group, in client mode): resubmitted, it resumes from its checkpoint
   in the cluster's shared directory.

Each killed node is brought back once the job has completed a batch without it. The figures are the
fault drill's (every transaction, alert and rule hit stored once) with the cluster's own."""

from __future__ import annotations

import http.client
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

import fraudshop
from fraudshop.config import Config
from fraudshop.io.cassandra.session import CASSANDRA_UNAVAILABLE, cassandra_session
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.jobs.launcher import job_processes
from fraudshop.lab.faults import (
    DrillPlan,
    Fault,
    NodeKilled,
    SupervisedJob,
    batches_with_records,
    run_drill,
)
from fraudshop.lab.stack.cluster import ClusterNode, cluster_is_running, cluster_nodes_of, node_named
from fraudshop.lab.waiting import wait_until

log = logging.getLogger(__name__)

#: The cluster drill's faults, in this order: a node of each engine, then the driver.
CLUSTER_FAULTS = (Fault.KILL_CASSANDRA_NODE, Fault.KILL_KAFKA_LEADER, Fault.KILL_SPARK_WORKER, Fault.KILL_JOB)
#: Longest wait for a batch's tasks to run (a mid-batch fault), and for every replica to hold every row.
TASKS_TIMEOUT_SECONDS = 120
REPLICAS_TIMEOUT_SECONDS = 300


def package_zip(target: Path) -> Path:
    """The package zipped for ``--py-files`` as docs/cluster.md shows (``python3 -m zipfile -c
    fraudshop.zip fraudshop/``), from wherever this fraudshop is installed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    package_parent = Path(fraudshop.__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "zipfile", "-c", str(target), "fraudshop/"], cwd=package_parent, check=True)
    return target


def partition_leader(config: Config, partition: int = 0) -> int:
    """The node id leading ``partition`` of the transaction topic."""
    admin = KafkaAdminClient(**kafka_client_settings(config.kafka))
    try:
        (topic,) = admin.describe_topics([config.kafka.topic])
    finally:
        admin.close()
    leaders = {entry["partition_index"]: entry["leader_id"] for entry in topic["partitions"]}
    return int(leaders[partition])


def records_in_topic(config: Config) -> int:
    """Records the transaction topic holds: the sum of its partitions' end offsets (nothing expires here)."""
    consumer = KafkaConsumer(**kafka_client_settings(config.kafka))
    try:
        partitions = [TopicPartition(config.kafka.topic, p) for p in consumer.partitions_for_topic(config.kafka.topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def driver_api(group: int) -> str:
    """The REST API of the running job's driver (its Spark UI, ``…/api/v1/applications/<id>``), found
    among the ports the job's JVM listens on: the one that answers it."""
    for process in job_processes(group):
        try:
            listening = [c.laddr for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
        for address in listening:
            base = f"http://{address.ip}:{address.port}/api/v1/applications"
            try:
                applications = _get_json(base)
            except (OSError, ValueError, http.client.HTTPException):
                continue  # not HTTP (Py4J's gateway, Spark's RPC): not the UI
            if applications:
                return f"{base}/{applications[0]['id']}"
    raise RuntimeError(f"the job's driver (process group {group}) serves no Spark UI")


def _busy_executor(api: str) -> dict[str, Any] | None:
    """An executor (not the driver) running tasks now."""
    executors = _get_json(f"{api}/executors")
    busy = [e for e in executors if e["id"] != "driver" and e["activeTasks"] > 0]
    return max(busy, key=lambda e: e["activeTasks"]) if busy else None


class ClusterFaults:
    """Kills the lab cluster's nodes for the drill's faults, and brings them back."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.progress_file = Path(config.job.progress_file).expanduser()

    def __call__(self, fault: Fault, job: SupervisedJob) -> NodeKilled:
        if fault is Fault.KILL_CASSANDRA_NODE:
            # The last node: the seed stays up, as a ring's seeds are more than one.
            node = node_named(self.config, f"cassandra-{len(self.config.cassandra.host_list)}")
            killed = self._kill(node, {})
            return replace(killed, bring_back=partial(self._after_replica_lost, node))
        if fault is Fault.KILL_KAFKA_LEADER:
            leader = partition_leader(self.config)
            node = node_named(self.config, f"kafka-{leader}")
            killed = self._kill(node, {"partition_0_leader": leader})
            return replace(killed, bring_back=partial(self._after_leader_lost, node))
        if fault is Fault.KILL_SPARK_WORKER:
            return self._kill_busy_worker(job)
        raise ValueError(f"{fault} is not a fault of the cluster's nodes")

    def _kill(self, node: ClusterNode, figures: dict[str, Any]) -> NodeKilled:
        batches_before = batches_with_records(self.progress_file)
        struck = time.monotonic()
        node.server.kill()
        killed_in = round(time.monotonic() - struck, 1)
        log.info("killed %s (%s:%d) with SIGKILL", node.server.name, node.server.host, node.server.port)
        figures = {"node": node.server.name, **figures, "kill_seconds": killed_in}
        return NodeKilled(figures, struck, batches_before, partial(self._bring_back, node))

    def _bring_back(self, node: ClusterNode) -> dict[str, Any]:
        return {"node_restart_seconds": round(node.server.start(self.config.stack.start_timeout_seconds), 1)}

    def _after_replica_lost(self, node: ClusterNode) -> dict[str, Any]:
        """Back, the node lacks what was written while it was down until hints bring it (the drill's
        transaction table has no read repair): how much, read the moment it serves again, of what the
        two others held just before."""
        written_meanwhile = stored_transactions(self.config)  # at LOCAL_QUORUM: the two live replicas
        figures = self._bring_back(node)
        on_the_node = stored_transactions(self.config, node.server.host)
        return {**figures, "missing_on_it_when_back": len(written_meanwhile - on_the_node)}

    def _after_leader_lost(self, node: ClusterNode) -> dict[str, Any]:
        moved_to = partition_leader(self.config)
        return {"partition_0_leader_while_down": moved_to, **self._bring_back(node)}

    def _kill_busy_worker(self, job: SupervisedJob) -> NodeKilled:
        api = driver_api(job.group)
        busy: dict[str, Any] | None = None

        def tasks_running() -> bool:
            nonlocal busy
            job.keep_running()
            busy = _busy_executor(api)
            return busy is not None

        wait_until(tasks_running, TASKS_TIMEOUT_SECONDS, "a batch's tasks running on an executor", interval=0.05)
        assert busy is not None
        host = busy["hostPort"].rsplit(":", 1)[0]
        workers = [n for n in cluster_nodes_of(self.config) if n.server.name.startswith("spark-worker")]
        matching = [worker for worker in workers if worker.server.host == host]
        if len(matching) != 1:
            raise RuntimeError(f"executor {busy['id']} runs on {host}, which is no worker of the lab cluster")
        node = matching[0]
        killed = self._kill(node, {"executor": busy["id"], "tasks_running_on_it": busy["activeTasks"]})
        return replace(killed, bring_back=partial(self._after_worker_lost, node, api, busy["id"]))

    def _after_worker_lost(self, node: ClusterNode, api: str, executor: str) -> dict[str, Any]:
        lost = [e for e in _get_json(f"{api}/allexecutors") if e["id"] == executor]
        figures = {
            "executor_removed": bool(lost) and not lost[0]["isActive"],
            "executor_remove_reason": lost[0].get("removeReason", "") if lost else "",
        }
        return {**figures, **self._bring_back(node)}


def stored_transactions(
    config: Config, only_node: str | None = None, consistency: int | None = None
) -> set[tuple[str, str]]:
    """The (account_no, tranid) of every stored transaction, at LOCAL_QUORUM (or ``consistency``), or as
    ``only_node`` holds them (at ONE, that node coordinating); a scan that times out (a node just back
    replays its logs and hints) is tried again."""
    read = SimpleStatement(
        f"SELECT account_no, tranid FROM {config.cassandra.keyspace}.transaction", consistency_level=consistency
    )
    keys: set[tuple[str, str]] = set()

    def scanned() -> bool:
        with cassandra_session(config.cassandra, only_node=only_node) as session:
            keys.update((row.account_no, row.tranid) for row in session.execute(read))
        return True

    wait_until(scanned, REPLICAS_TIMEOUT_SECONDS, f"a scan of the transactions ({only_node or 'a quorum'})",
               interval=2, unavailable=CASSANDRA_UNAVAILABLE)  # fmt: skip
    return keys


def replicas_check(config: Config, malformed: int, expected: set[tuple[str, str]]) -> tuple[dict[str, Any], bool]:
    """Each Cassandra node, read alone at ONE, holds every expected transaction (waiting for the hints
    of a node that was down); a read at ALL finds them all; Kafka holds each record once."""
    missing: dict[str, int] = {}
    started = time.monotonic()

    def every_replica_has_every_row() -> bool:
        for host in config.cassandra.host_list:
            missing[host] = len(expected - stored_transactions(config, host))
        log.info("transactions missing on each replica: %s", missing)
        return not any(missing.values())

    try:
        wait_until(every_replica_has_every_row, REPLICAS_TIMEOUT_SECONDS, "every replica", interval=5,
                   unavailable=CASSANDRA_UNAVAILABLE)  # fmt: skip
    except TimeoutError:
        log.error("replicas still missing transactions after %d s: %s", REPLICAS_TIMEOUT_SECONDS, missing)
    seconds = round(time.monotonic() - started, 1)
    try:
        read_at_all = stored_transactions(config, consistency=ConsistencyLevel.ALL)
    except TimeoutError:  # a replica still down: the check fails, with the figures so far
        read_at_all = set()
    in_topic = records_in_topic(config)
    figures = {
        "replica_transactions_missing": missing,
        "seconds_until_every_replica_complete": seconds,
        "transactions_read_at_all": len(read_at_all & expected),
        "kafka_records_extra": in_topic - len(expected) - malformed,
    }
    passed = not any(missing.values()) and read_at_all == expected and figures["kafka_records_extra"] == 0
    return figures, passed


def run_cluster_drill(config: Config, plan: DrillPlan, work_dir: Path, keep: bool = False) -> dict[str, Any]:
    """Run ``plan`` on the running lab cluster, in a scratch keyspace and topic, the checkpoint under
    ``work_dir`` (in the cluster's shared directory)."""
    from fraudshop.lab.scratch import scratch_space

    if not cluster_is_running(config):
        raise ValueError("the lab cluster is not running: start it with fraudshop cluster up")
    if other := [str(fault) for fault in plan.faults if not (fault.on_a_node or fault.server is None)]:
        raise ValueError(f"the cluster drill kills nodes and the driver; it restarts no server: {', '.join(other)}")
    zipped = package_zip(work_dir / "fraudshop.zip")
    per_trigger = max(1, plan.transactions // (4 * (len(plan.faults) + 1)))
    settings = [f"job.py_files={zipped}"]
    if not 0 < config.kafka.max_offsets_per_trigger <= per_trigger:
        settings.append(f"kafka.max_offsets_per_trigger={per_trigger}")
    config = config.with_settings(*settings)
    with scratch_space(config, "cluster_drill", work_dir, keep=keep) as (scratch, session):
        # Only hints may complete a node that was down: no read (the drill's own polls at LOCAL_QUORUM
        # included) repairs the table the replicas are checked on.
        session.execute(f"ALTER TABLE {scratch.cassandra.keyspace}.transaction WITH read_repair = 'NONE'")
        return run_drill(
            scratch,
            plan,
            session,
            work_dir,
            restart_server=_no_restarts,
            kill_node=ClusterFaults(scratch),
            final_check=partial(replicas_check, scratch, plan.malformed),
        )


def _no_restarts(name: str) -> None:
    raise AssertionError(f"the cluster drill restarts no server ({name}): its faults were checked")
