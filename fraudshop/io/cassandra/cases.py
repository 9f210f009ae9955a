"""Store and search the known cases (``fraud_case``): record a case, find a vector's nearest cases with
Cassandra's ANN index, read every case for the stream's exact search."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import UNSET_VALUE, PreparedStatement

from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.cassandra.session import prepared
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase
from fraudshop.model.changes import as_utc
from fraudshop.model.tables import FRAUD_CASE_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NearCase:
    case: FraudCase
    cosine: float  # in [-1, 1]: Cassandra's similarity_cosine, (1 + cosine) / 2, mapped back


def _case_of(row: Any) -> FraudCase:
    values = row._asdict()
    return FraudCase(
        **{
            **{name: values[name] for name in FRAUD_CASE_COLUMNS},
            "vector": tuple(values["vector"]),
            "label": CaseLabel(values["label"]),
            "source": CaseSource(values["source"]),
            "recorded_at": as_utc(values["recorded_at"]),
            "tranpostdt": None if values["tranpostdt"] is None else as_utc(values["tranpostdt"]),
        }
    )


def _bound(case: FraudCase, column: str) -> object:
    """A case's value of ``column`` as bound: unset, not null, where it has none (a null writes a tombstone)."""
    value = getattr(case, column)
    if value is None:
        return UNSET_VALUE
    return list(value) if column == "vector" else value


class CaseStore:
    """The ``fraud_case`` table of ``keyspace``. Every statement is prepared once per session."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace

    def _statement(self, cql: str, consistency: int = ConsistencyLevel.LOCAL_QUORUM) -> PreparedStatement:
        return prepared(self._session, cql, consistency)

    def record(self, cases: Iterable[FraudCase]) -> int:
        """Write ``cases`` (a case recorded again rewrites its row); return how many."""
        insert = self._statement(insert_statement(self._keyspace, "fraud_case", FRAUD_CASE_COLUMNS))
        rows = [tuple(_bound(case, name) for name in FRAUD_CASE_COLUMNS) for case in cases]
        # Two in flight: Cassandra 5.0.9 fails a vector-indexed write once more run at once than its
        # jvector pool holds (three on a 2-core node; CASSANDRA-21644, fixed after 5.0.9).
        for success, result in execute_concurrent_with_args(self._session, insert, rows, concurrency=2):
            if not success:
                raise result
        return len(rows)

    def nearest(self, vector: Iterable[float], k: int) -> list[NearCase]:
        """The ``k`` cases nearest ``vector`` by Cassandra's ANN index (approximate; at most 1,000;
        read at consistency ONE, as ANN queries are)."""
        columns = ", ".join(FRAUD_CASE_COLUMNS)
        cql = (
            f"SELECT {columns}, similarity_cosine(vector, ?) AS similarity FROM {self._keyspace}.fraud_case "
            "ORDER BY vector ANN OF ? LIMIT ?"
        )
        probe = list(vector)
        rows = self._session.execute(self._statement(cql, ConsistencyLevel.ONE), (probe, probe, k))
        return [NearCase(_case_of(row), 2 * float(row.similarity) - 1) for row in rows]

    def get(self, case_id: str) -> FraudCase | None:
        cql = f"SELECT {', '.join(FRAUD_CASE_COLUMNS)} FROM {self._keyspace}.fraud_case WHERE case_id = ?"
        row = self._session.execute(self._statement(cql), (case_id,)).one()
        return None if row is None else _case_of(row)

    def all_cases(self) -> list[FraudCase]:
        """Every case: the stream's exact search reads them all."""
        cql = f"SELECT {', '.join(FRAUD_CASE_COLUMNS)} FROM {self._keyspace}.fraud_case"
        return [_case_of(row) for row in self._session.execute(self._statement(cql))]
