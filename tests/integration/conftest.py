"""The real local stack for integration tests: Kafka and Cassandra started by fraudshop itself on
test ports, one keyspace and one topic per test so tests never see each other's data."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.config import Config, load_config
from fraudshop.io.cassandra.schema import apply_schema
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.launcher import start_job, stop_job
from fraudshop.lab.scratch import stored_rows
from fraudshop.lab.stack import stack_down, stack_is_running, stack_up
from fraudshop.service.api import create_app

log = logging.getLogger(__name__)

# Ports of their own, so the suite runs beside a demo stack on the default ports; shifted by
# FRAUDSHOP_TEST_PORT_OFFSET so two checkouts can run their suites side by side.
_OFFSET = int(os.environ.get("FRAUDSHOP_TEST_PORT_OFFSET", "0"))
TEST_STACK_SETTINGS = (
    f"kafka.bootstrap_servers=127.0.0.1:{19092 + _OFFSET}",
    f"stack.kafka_controller_port={19093 + _OFFSET}",
    f"cassandra.port={19042 + _OFFSET}",
    f"stack.cassandra_storage_port={17000 + _OFFSET}",
    f"api.port={18080 + _OFFSET}",
    f"stack.state_dir=~/.local/state/fraudshop/test-stack-{19000 + _OFFSET}",
)


def config_for_tests(*settings: str) -> Config:
    """The test stack's config plus ``settings``; the caller's environment does not leak in."""
    return load_config(overrides=(*TEST_STACK_SETTINGS, *settings), environ={})


#: The lab cluster's config (conf/cluster.toml) on ports and a state directory of the tests' own, so the
#: smoke test runs beside a cluster started by hand and beside the test stack.
TEST_CLUSTER_SETTINGS = (
    "kafka.bootstrap_servers=" + ",".join(f"127.0.0.{node}:{19192 + _OFFSET}" for node in (1, 2, 3)),
    f"stack.kafka_controller_port={19193 + _OFFSET}",
    f"cassandra.port={19142 + _OFFSET}",
    f"stack.cassandra_storage_port={17100 + _OFFSET}",
    f"job.spark_master=spark://127.0.0.1:{17077 + _OFFSET}",
    f"cluster.spark_worker_port={17078 + _OFFSET}",
    f"cluster.spark_webui_port={18180 + _OFFSET}",
    f"api.port={18090 + _OFFSET}",
    f"stack.state_dir=~/.local/state/fraudshop/test-cluster-{19000 + _OFFSET}",
)


@pytest.fixture(scope="session")
def stack_config() -> Iterator[Config]:
    config = config_for_tests()
    was_running = stack_is_running(config)
    started = time.monotonic()
    ready_after = stack_up(config)
    log.info("test stack up in %.1f s: %s", time.monotonic() - started, ready_after)
    yield config
    if not was_running:
        stack_down(config)


@pytest.fixture
def isolated_config(stack_config: Config, tmp_path: Path) -> Config:
    suffix = uuid.uuid4().hex[:10]
    return config_for_tests(
        f"cassandra.keyspace=test_{suffix}",
        f"kafka.topic=transaction_{suffix}",
        f"kafka.notifications_topic=notifications_{suffix}",
        f"job.checkpoint_dir={tmp_path / 'checkpoint'}",
        "job.trigger_interval=1 second",
    )


@pytest.fixture
def cassandra(isolated_config: Config) -> Iterator[Session]:
    """A session on a fresh keyspace with the fraudshop schema, dropped afterwards."""
    with cassandra_session(isolated_config.cassandra) as session:
        apply_schema(session, isolated_config.cassandra)
        yield session
        session.execute(f"DROP KEYSPACE IF EXISTS {isolated_config.cassandra.keyspace}")


#: The API token of the tests' in-process API (:func:`api`).
API_TOKEN = "e2e-token"
API_AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def running_job(isolated_config: Config, tmp_path: Path) -> Iterator[Path]:
    """The detection job, spark-submitted on the test's keyspace and topics; yields its log file."""
    ensure_topic(isolated_config.kafka)
    job_log = tmp_path / "job.log"
    with open(job_log, "wb") as output:
        job = start_job(isolated_config, output)
    try:
        yield job_log
        assert job.poll() is None, f"the job died:\n{job_log.read_text()[-5000:]}"
    finally:
        stop_job(job)


@pytest.fixture
def api(isolated_config: Config, cassandra: Session) -> Iterator[TestClient]:
    """The HTTP API on the test's keyspace, served in-process, with token :data:`API_TOKEN`."""
    with TestClient(create_app(isolated_config.with_settings(f"api.token={API_TOKEN}"))) as client:
        yield client


__all__ = ["API_AUTH", "config_for_tests", "stored_rows"]
