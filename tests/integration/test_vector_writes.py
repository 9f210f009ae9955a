"""Vector-indexed writes on the local stack's Cassandra 5.0.9 (CASSANDRA-21644: its vector index fails a
write once more run at once than its jvector pool holds, processors + 1). The stack runs as many writers
as processors, so many writes in flight succeed, and a node killed after them replays its commit log
(every writer at once) and starts, with every case found again, by key and by the ANN index."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from cassandra import OperationTimedOut
from cassandra.cluster import NoHostAvailable, Session
from cassandra.concurrent import execute_concurrent_with_args

from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.lab.stack.cassandra import cassandra_server
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, seeded_case_id
from fraudshop.model.features import VECTOR_DIMENSIONS
from fraudshop.model.tables import FRAUD_CASE_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: Writes in flight: well past the pool of a 2-core node's 3 objects, which 5.0.9's defaults overran.
IN_FLIGHT = 16
CASES = 400
#: The local stack's commit log syncs every 10 s (periodic mode): writes older than that survive a kill -9.
COMMITLOG_SYNC_SECONDS = 10


def _random_cases(count: int) -> list[FraudCase]:
    rng = np.random.default_rng(21644)
    vectors = rng.normal(size=(count, VECTOR_DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    recorded_at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        FraudCase(
            case_id=seeded_case_id("crash-test", number),
            vector=tuple(float(x) for x in vector),
            label=random.Random(number).choice(list(CaseLabel)),
            source=CaseSource.SEEDED,
            pattern="crash-test",
            recorded_at=recorded_at,
            recorded_by="test",
        )
        for number, vector in enumerate(vectors)
    ]


def _bound(case: FraudCase, column: str) -> object:
    return list(case.vector) if column == "vector" else getattr(case, column)


def test_vector_writes_in_flight_succeed_and_survive_a_kill_and_commit_log_replay(
    isolated_config: Config, cassandra: Session
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    cases = _random_cases(CASES)
    insert = cassandra.prepare(insert_statement(keyspace, "fraud_case", FRAUD_CASE_COLUMNS))
    rows = [tuple(_bound(case, name) for name in FRAUD_CASE_COLUMNS) for case in cases]
    # Many writes at once: on 5.0.9's defaults (32 writers on 2 cores) some failed with WriteFailure.
    results = execute_concurrent_with_args(cassandra, insert, rows, concurrency=IN_FLIGHT, raise_on_first_error=False)
    failures = [result for success, result in results if not success]
    assert failures == [], failures[:3]

    time.sleep(COMMITLOG_SYNC_SECONDS + 2)  # every write synced to the commit log, none flushed to disk yet
    server = cassandra_server(isolated_config)
    assert server.is_running(), "the test stack's Cassandra is not running"
    server.kill()
    # The restart replays the commit log on every writer at once; 5.0.9 with more writers exited with code 3.
    server.start(isolated_config.stack.start_timeout_seconds)

    with cassandra_session(isolated_config.cassandra) as session:
        store = CaseStore(session, keyspace)
        stored = {case.case_id: case for case in store.all_cases()}
        assert stored.keys() == {case.case_id for case in cases}
        for case in cases[:: CASES // 20]:
            assert stored[case.case_id].vector == pytest.approx(case.vector, abs=1e-6)
            nearest = store.nearest(case.vector, 1)
            assert nearest[0].case.case_id == case.case_id
            assert nearest[0].cosine == pytest.approx(1.0, abs=1e-5)
    # The fixture's session drops the keyspace afterwards: let it reconnect first.
    wait_until(
        lambda: cassandra.execute("SELECT release_version FROM system.local").one() is not None,
        60,
        "the test session's reconnection",
        unavailable=(NoHostAvailable, OperationTimedOut),
    )
