"""The risk model end to end on the real stack: the spark-submitted job stores every transaction's risk
features; frauds confirmed as cases label them; ``fraudshop model train`` (Spark MLlib, spark-submitted)
records a model in risk_model; the running job applies it from its next batch, and each probability is
the model's of the stored features, with the model's version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cassandra.cluster import Session

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.patterns import FraudPattern, pattern_instances
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, transaction_case_id
from fraudshop.model.changes import as_utc
from fraudshop.model.risk import RISK_FEATURE_SET, RISK_FEATURES
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration


def test_a_model_trained_on_confirmed_frauds_scores_the_next_batch(
    isolated_config: Config, cassandra: Session, running_job: Path
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    now = datetime.now(UTC)
    instances = [
        instance
        for pattern in (FraudPattern.CARD_TESTING, FraudPattern.VELOCITY_BURST)
        for instance in pattern_instances(pattern, 3, 11, now - timedelta(days=10))
    ]
    past = [transaction for instance in instances for transaction in (*instance.history, *instance.frauds)]
    accounts = sorted({instance.account_no for instance in instances})

    def stored(columns: str) -> list[Any]:
        return [
            row
            for account in accounts
            for row in cassandra.execute(
                f"SELECT {columns} FROM {keyspace}.transaction WHERE account_no = %s", (account,)
            )
        ]

    def with_features() -> int:
        return sum(1 for row in stored("tranid, risk_features") if row.risk_features is not None)

    send_transactions(isolated_config.kafka, past, rate=0, record_format="json")
    wait_until(lambda: with_features() == len(past), 240, "the past transactions' risk features")
    rows = stored("account_no, tranpostdt, tranid, vector, risk_features, risk_feature_set, fraud_probability")
    assert all(
        row.risk_feature_set == RISK_FEATURE_SET and len(row.risk_features) == len(RISK_FEATURES) for row in rows
    )
    assert all(row.fraud_probability is None for row in rows)  # no model yet

    # The frauds come back as confirmed cases, as an analyst's confirmations would.
    fraud_ids = {fraud["tranid"] for instance in instances for fraud in instance.frauds}
    confirmed = [
        FraudCase(
            case_id=transaction_case_id(row.account_no, as_utc(row.tranpostdt), row.tranid),
            vector=tuple(row.vector),
            label=CaseLabel.FRAUD,
            source=CaseSource.ANALYST,
            pattern=None,
            recorded_at=now - timedelta(days=1),
            recorded_by="test",
            account_no=row.account_no,
            tranpostdt=as_utc(row.tranpostdt),
            tranid=row.tranid,
        )
        for row in rows
        if row.tranid in fraud_ids
    ]
    CaseStore(cassandra, keyspace).record(confirmed)

    settings = [item for setting in TEST_STACK_SETTINGS for item in ("--set", setting)]
    assert fraudshop_main(["model", "train", *settings, "--set", f"cassandra.keyspace={keyspace}"]) == 0
    model = ModelStore(cassandra, keyspace).current()
    assert model is not None
    assert model.training_rows == len(past) and model.training_frauds == len(confirmed)
    assert model.training_auc > 0.9  # the patterns are unlike their accounts' ordinary months

    # The next batch is scored by it: the probability is the model's of the stored features.
    (fresh,) = pattern_instances(FraudPattern.CARD_TESTING, 1, 99, now)
    send_transactions(isolated_config.kafka, fresh.frauds, rate=0, record_format="json")
    new_ids = {fraud["tranid"] for fraud in fresh.frauds}

    def scored_by_the_model() -> list[Any]:
        rows = cassandra.execute(
            f"SELECT tranid, risk_features, fraud_probability, model_version FROM {keyspace}.transaction "
            "WHERE account_no = %s",
            (fresh.account_no,),
        )
        return [row for row in rows if row.tranid in new_ids and row.model_version is not None]

    wait_until(lambda: len(scored_by_the_model()) == len(new_ids), 120, "the fresh transactions' probabilities")
    for row in scored_by_the_model():
        assert row.model_version == model.version
        features = np.array([row.risk_features], dtype=np.float32)
        assert row.fraud_probability == model.probabilities(features)[0]
