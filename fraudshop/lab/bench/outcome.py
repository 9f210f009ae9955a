"""What a run left in Cassandra: the correctness check, and each alert's event→alert latency
(Kafka record timestamp → the cust_fraud row's WRITETIME)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

from fraudshop.lab.bench.workload import AlertKey, TransactionKey, customer_of


@dataclass(frozen=True)
class LatencySample:
    #: When Kafka received the transaction (its record timestamp), seconds since the epoch.
    event_at: float
    #: From then until Cassandra's write time of the cust_fraud row, seconds.
    latency: float


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def alerts_with_latency(
    session: Session, keyspace: str, changed_accounts: Iterable[str]
) -> tuple[set[AlertKey], list[LatencySample]]:
    """Every alert (the whole table, so an unexpected one counts too), and one latency sample per
    alert of a changed account whose transaction is stored (its row keeps the record timestamp)."""
    of_account = session.prepare(f"SELECT tranid, source_timestamp FROM {keyspace}.transaction WHERE account_no = ?")
    event_at = {
        (customer_of(account), row.tranid): _epoch(row.source_timestamp)
        for account in changed_accounts
        for row in session.execute(of_account, (account,))
    }
    alerts: set[AlertKey] = set()
    samples = []
    for row in session.execute(
        f"SELECT customer_id, tranid, WRITETIME(account_no) AS written FROM {keyspace}.cust_fraud"
    ):
        key = (row.customer_id, row.tranid)
        alerts.add(key)
        if key in event_at:
            samples.append(LatencySample(event_at[key], row.written / 1e6 - event_at[key]))
    return alerts, sorted(samples, key=lambda sample: sample.event_at)


def correctness(
    offered: set[TransactionKey], stored: set[TransactionKey], expected: set[AlertKey], alerts: set[AlertKey]
) -> dict[str, Any]:
    return {
        "transactions_offered": len(offered),
        "transactions_stored": len(stored),
        "transactions_missing": len(offered - stored),
        "transactions_extra": len(stored - offered),
        "alerts_expected": len(expected),
        "alerts_stored": len(alerts),
        "alerts_missing": len(expected - alerts),
        "alerts_extra": len(alerts - expected),
        "passed": offered == stored and expected == alerts,
    }
