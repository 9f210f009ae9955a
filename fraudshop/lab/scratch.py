"""A scratch keyspace, topic and checkpoint for a run that must not touch your real tables: the
benchmark and the fault drill start from empty and clean up after themselves."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from kafka.admin import KafkaAdminClient

from fraudshop.config import Config
from fraudshop.io.cassandra.schema import apply_schema
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.io.kafka.topics import ensure_topic

log = logging.getLogger(__name__)


def scratch_config(config: Config, name: str, work_dir: Path) -> Config:
    """``config`` on a keyspace and topics named ``<name>_<random>`` (and ``…_notifications``), checkpoint and progress
    file in ``work_dir``, reading its topic from the start."""
    scratch = f"{name}_{uuid.uuid4().hex[:8]}"
    return config.with_settings(
        f"kafka.topic={scratch}",
        f"kafka.notifications_topic={scratch}_notifications",
        "kafka.starting_offsets=earliest",
        f"cassandra.keyspace={scratch}",
        f"job.checkpoint_dir={work_dir / 'checkpoint'}",
        f"job.progress_file={work_dir / 'progress.jsonl'}",
    )


@contextmanager
def scratch_space(config: Config, name: str, work_dir: Path, keep: bool = False) -> Iterator[tuple[Config, Session]]:
    """Create a scratch keyspace (fraudshop's schema, ``cassandra.replication``) and topic; yield
    their config and a session; drop both and the checkpoint afterwards unless ``keep``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    scratch = scratch_config(config, name, work_dir)
    log.info("scratch keyspace and topic %s; work files in %s", scratch.kafka.topic, work_dir)
    with cassandra_session(scratch.cassandra) as session:
        apply_schema(session, scratch.cassandra)
        ensure_topic(scratch.kafka)
        try:
            yield scratch, session
        finally:
            if keep:
                log.info("kept keyspace and topic %s", scratch.kafka.topic)
            else:
                _drop(scratch, session, work_dir)


def stored_rows(session: Session, keyspace: str, table: str, columns: str) -> set[tuple[Any, ...]]:
    """Every row of a scratch table (drill- or benchmark-sized: read whole), as tuples of ``columns``."""
    return {tuple(row) for row in session.execute(f"SELECT {columns} FROM {keyspace}.{table}")}


def _drop(scratch: Config, session: Session, work_dir: Path) -> None:
    session.execute(f"DROP KEYSPACE IF EXISTS {scratch.cassandra.keyspace}")
    admin = KafkaAdminClient(**kafka_client_settings(scratch.kafka))
    try:
        admin.delete_topics([scratch.kafka.topic, scratch.kafka.notifications_topic])
    finally:
        admin.close()
    shutil.rmtree(work_dir / "checkpoint", ignore_errors=True)
