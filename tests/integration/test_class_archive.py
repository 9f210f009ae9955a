"""`fraudshop job --prepare` for real: the warm-up run against the test stack writes the driver's
class archive, and a job started afterwards maps it and completes a batch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest
from cassandra.cluster import Session

from fraudshop.config import Config
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.class_archive import java_executable
from fraudshop.jobs.launcher import (
    class_archive,
    job_command,
    job_processes,
    prepare_class_archive,
    start_job,
    stop_job,
)
from fraudshop.lab.waiting import wait_until
from fraudshop.lab.workload import synthetic_transactions

from .conftest import stored_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def own_cache(isolated_config: Config, tmp_path: Path) -> Config:
    """The isolated config with a cache of its own, so that the archive is this test's, but the
    shared cache's Ivy directory (its jars and their record: no download, the same --jars)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ivy").symlink_to(isolated_config.stack.cache_dir / "ivy", target_is_directory=True)
    return isolated_config.model_copy(update={"stack": isolated_config.stack.model_copy(update={"cache_dir": cache})})


def mapped_files(group: int) -> set[str]:
    paths = set()
    for process in job_processes(group):
        try:
            paths |= {mapping.path for mapping in process.memory_maps()}
        except psutil.Error:
            continue
    return paths


def test_a_prepared_job_maps_the_archive_and_runs_a_batch(
    own_cache: Config, cassandra: Session, tmp_path: Path
) -> None:
    config = own_cache
    assert not class_archive(config).exists()
    with open(tmp_path / "prepare.log", "wb") as output:
        archive = prepare_class_archive(config, output, timeout_seconds=300)
    assert archive == class_archive(config) and archive.stat().st_size > 10_000_000, archive
    assert sorted(path.name for path in archive.parent.iterdir()) == [archive.name], "no dump left behind"
    assert f"-XX:SharedArchiveFile={archive}" in " ".join(job_command(config))
    # A JVM whose class path is not the archive's (it is stale) runs without it, as JDK 17's -Xshare:auto does.
    java = java_executable(os.environ)
    assert java is not None
    stale_use = [str(java), f"-XX:SharedArchiveFile={archive}", "-cp", str(tmp_path), "-version"]
    elsewhere = subprocess.run(stale_use, capture_output=True, timeout=60)
    assert elsewhere.returncode == 0, elsewhere.stderr

    ensure_topic(config.kafka)
    job_log = tmp_path / "job.log"
    with open(job_log, "wb") as output:
        job = start_job(config, output)
    try:
        send_transactions(config.kafka, synthetic_transactions(5), rate=0, limit=20)
        keyspace = config.cassandra.keyspace

        def stored() -> bool:
            assert job.poll() is None, f"the job died:\n{job_log.read_text()[-5000:]}"
            return len(stored_rows(cassandra, keyspace, "transaction", "account_no, tranid")) == 20

        wait_until(stored, 180, "the job's first batch")
        assert str(archive) in mapped_files(job.pid), "the driver JVM runs with the archive mapped"
    finally:
        stop_job(job)
