"""The quarantine: list records the job could not read, by reason, and replay them after a fix."""

from __future__ import annotations

import logging
from typing import Any

from cassandra.cluster import Session
from kafka import KafkaProducer

from fraudshop.config import Config
from fraudshop.io.cassandra.schema import key_condition
from fraudshop.io.kafka.settings import kafka_client_settings
from fraudshop.model.records import REJECT_REASONS
from fraudshop.model.tables import REJECT_COLUMNS, REJECT_KEY

log = logging.getLogger(__name__)

#: A quarantined record as listed for one reason: every column but the reason, its partition key.
REJECT_LIST_COLUMNS: tuple[str, ...] = tuple(column for column in REJECT_COLUMNS if column != REJECT_KEY[0])


def count_rejects(session: Session, keyspace: str) -> dict[str, int]:
    """Quarantined records per reason code (one partition read per code)."""
    statement = session.prepare(f"SELECT count(*) FROM {keyspace}.transaction_rejects WHERE reason = ?")
    return {reason: session.execute(statement, (reason,)).one()[0] for reason in REJECT_REASONS}


def list_rejects(session: Session, keyspace: str, reason: str, limit: int) -> list[dict[str, Any]]:
    if reason not in REJECT_REASONS:
        raise ValueError(f"unknown reason {reason!r}; reasons: {', '.join(REJECT_REASONS)}")
    rows = session.execute(
        f"SELECT {', '.join(REJECT_LIST_COLUMNS)} FROM {keyspace}.transaction_rejects WHERE reason = %s LIMIT %s",
        (reason, limit),
    )
    return [dict(row._asdict()) for row in rows]


def replay_rejects(config: Config, session: Session, reason: str, limit: int) -> int:
    """Send the raw records quarantined for ``reason`` to the transaction topic again, and remove
    each from the quarantine once the broker acknowledged it. Records that are still invalid are
    quarantined again, under their new offsets. Returns how many were replayed."""
    keyspace = config.cassandra.keyspace
    rejects = list_rejects(session, keyspace, reason, limit)
    delete = session.prepare(f"DELETE FROM {keyspace}.transaction_rejects WHERE {key_condition(REJECT_KEY)}")
    producer = KafkaProducer(**kafka_client_settings(config.kafka), acks="all")
    try:
        for reject in rejects:
            producer.send(config.kafka.topic, value=(reject["raw_value"] or "").encode()).get(timeout=30)
            session.execute(delete, (reason, *(reject[column] for column in REJECT_KEY[1:])))
    finally:
        producer.close()
    log.info("replayed %d record(s) quarantined as %s to %s", len(rejects), reason, config.kafka.topic)
    return len(rejects)
