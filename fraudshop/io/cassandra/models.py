"""Store and read the trained risk models (``risk_model``): the job applies the newest of its feature set."""

from __future__ import annotations

from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session

from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.cassandra.session import prepared
from fraudshop.model.changes import as_utc
from fraudshop.model.risk import RISK_FEATURE_SET, RiskModel
from fraudshop.model.tables import RISK_MODEL_COLUMNS


def _model_of(row: Any) -> RiskModel:
    return RiskModel(
        version=row.model_version,
        feature_set=row.feature_set,
        features=tuple(row.features),
        intercept=row.intercept,
        coefficients=tuple(row.coefficients),
        trained_at=as_utc(row.trained_at),
        as_of=as_utc(row.as_of),
        training_rows=row.training_rows,
        training_frauds=row.training_frauds,
        training_auc=row.training_auc,
        regularization=row.regularization,
    )


class ModelStore:
    """The ``risk_model`` table of ``keyspace``."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace

    def record(self, model: RiskModel) -> None:
        cql = insert_statement(self._keyspace, "risk_model", RISK_MODEL_COLUMNS)
        insert = prepared(self._session, cql, ConsistencyLevel.LOCAL_QUORUM)
        values = {
            "feature_set": model.feature_set,
            "trained_at": model.trained_at,
            "model_version": model.version,
            "as_of": model.as_of,
            "features": list(model.features),
            "coefficients": list(model.coefficients),
            "intercept": model.intercept,
            "training_rows": model.training_rows,
            "training_frauds": model.training_frauds,
            "training_auc": model.training_auc,
            "regularization": model.regularization,
        }
        self._session.execute(insert, tuple(values[name] for name in RISK_MODEL_COLUMNS))

    def models(self, feature_set: str = RISK_FEATURE_SET, limit: int = 1) -> list[RiskModel]:
        """The ``limit`` newest models of ``feature_set``, newest first."""
        columns = ", ".join(RISK_MODEL_COLUMNS)
        select = prepared(
            self._session,
            f"SELECT {columns} FROM {self._keyspace}.risk_model WHERE feature_set = ? LIMIT ?",
            ConsistencyLevel.LOCAL_QUORUM,
        )
        return [_model_of(row) for row in self._session.execute(select, (feature_set, limit))]

    def current(self, feature_set: str = RISK_FEATURE_SET) -> RiskModel | None:
        """The newest model of ``feature_set``, None before the first training."""
        newest = self.models(feature_set, 1)
        return newest[0] if newest else None
