"""The same transactions through POST /authorize and through the spark-submitted job, on the real stack:
each is authorized, then sent to the topic, and the next one waits until the job has stored it, so both
paths see the same stored state. The reasons must be the job's hits and alerts, and the scores the job's
stored scores: the similarity (exact search in the job, Cassandra's ANN in the API), the risk features
and the model's probability."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, transaction_case_id
from fraudshop.model.changes import to_cassandra_time
from fraudshop.model.features import VECTOR_DIMENSIONS
from fraudshop.model.risk import RISK_FEATURES, RiskModel
from fraudshop.service.api import create_app
from tests.integration.conftest import API_AUTH, API_TOKEN, TEST_STACK_SETTINGS
from tests.risk_models import a_risk_model

pytestmark = pytest.mark.integration

#: (account, merchant, amount) in the order they are sent, and what each is there for.
SEQUENCE: tuple[tuple[str, str, float], ...] = (
    ("ACC-A", "M-GROCER", 25.0),  # a quiet one
    ("ACC-A", "M-NEW", 40.0),  # new merchant for ACC-A
    ("ACC-A", "M-GROCER", 150.0),  # over ACC-A's cap
    ("ACC-A", "M-NEW", 60.0),  # M-NEW no longer new: the job's write of the second is in the history
    ("ACC-A", "M-ELEC", 700.0),  # the merchant's staff confirmation, the cap, a new merchant
    ("ACC-B", "M-GROCER", 30.0),  # ACC-B's profile changed 2 h before
    ("ACC-B", "M-DAILY", 50.0),  # M-DAILY's first over 10 today
    ("ACC-A", "M-DAILY", 50.0),  # its second: over its daily count of 1
    ("ACC-B", "M-DAILY", 55.0),  # its third: the count was crossed already
)
RULES: tuple[dict[str, Any], ...] = (
    {"kind": "amount_over", "customer_id": "CUST-A", "account_no": "ACC-A", "amount_limit": 100.0},
    {"kind": "new_merchant", "customer_id": "CUST-A", "account_no": "ACC-A", "lookback_days": 30},
    {"kind": "merchant_amount_over", "merchant_id": "M-ELEC", "amount_limit": 500.0},
    {"kind": "merchant_daily_count", "merchant_id": "M-DAILY", "amount_above": 10.0, "count_limit": 1},
)


#: A hit's or a reason's kind, rule id, evidence value and limit (to 4 places: the API's figures travel as JSON).
Evidence = tuple[str, str | None, float | None, float | None]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@pytest.fixture
def api(isolated_config: Config, cassandra: Session) -> Iterator[TestClient]:
    settings = (f"api.token={API_TOKEN}", "authorize.refresh_seconds=0.2")
    with TestClient(create_app(isolated_config.with_settings(*settings))) as client:
        yield client


def a_model(trained_at: datetime) -> RiskModel:
    """Coefficients on every feature, so the probability moves with each of them."""
    return a_risk_model(trained_at, -2.0, np.random.default_rng(7).uniform(-0.6, 0.6, len(RISK_FEATURES)).tolist())


def store_the_past(session: Session, keyspace: str, now: datetime) -> None:
    """ACC-A's month at M-GROCER, and a fraud at M-GROCER ten days ago (by ACC-C), confirmed two days ago:
    the merchant's fraud count and shares are then not zero."""
    past = [("ACC-A", now - timedelta(days=days), f"H{days}", 20.0 + days) for days in (3, 6, 9, 15)]
    fraud = ("ACC-C", now - timedelta(days=10), "F-1", 480.0)
    for account, at, tranid, amount in (*past, fraud):
        session.execute(
            f"INSERT INTO {keyspace}.transaction (account_no, tranpostdt, tranid, amount, merchant_id, "
            "merchant_category, channel) VALUES (%s, %s, %s, %s, 'M-GROCER', '5411', 'pos')",
            (account, at, tranid, amount),
        )
        session.execute(
            f"INSERT INTO {keyspace}.transaction_by_merchant_day (merchant_id, day, tranpostdt, account_no, tranid, "
            "amount) VALUES ('M-GROCER', %s, %s, %s, %s, %s)",
            (at.date(), at, account, tranid, amount),
        )
    account, at, tranid, amount = fraud
    direction = np.random.default_rng(3).standard_normal(VECTOR_DIMENSIONS)
    CaseStore(session, keyspace).record(
        [
            FraudCase(
                transaction_case_id(account, at, tranid),
                tuple(float(x) for x in direction / np.linalg.norm(direction)),
                CaseLabel.FRAUD,
                CaseSource.ANALYST,
                None,
                now - timedelta(days=2),
                "analyst-1",
                account,
                at,
                tranid,
                "M-GROCER",
                amount,
            )
        ]
    )


def test_authorize_gives_the_streams_reasons_and_scores(
    isolated_config: Config, cassandra: Session, running_job: Path, api: TestClient
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    settings = [
        item for setting in (*TEST_STACK_SETTINGS, f"cassandra.keyspace={keyspace}") for item in ("--set", setting)
    ]
    assert fraudshop_main(["cases", "seed", "--per-pattern", "10", *settings]) == 0
    for rule in RULES:
        assert api.post("/rules", json=rule, headers=API_AUTH).status_code == 201
    start = to_cassandra_time(datetime.now(UTC))
    store_the_past(cassandra, keyspace, start)
    change = {"account_no": "ACC-B", "customer_id": "CUST-B", "change_type": "phone"}
    change["changed_at"] = (start - timedelta(hours=2)).isoformat()
    assert api.post("/changes", json=change, headers=API_AUTH).status_code == 201
    model = a_model(start)
    ModelStore(cassandra, keyspace).record(model)
    probe = {"account_no": "ACC-PROBE", "tranid": "P", "amount": 1.0}

    def model_read() -> bool:
        return bool(api.post("/authorize", json=probe, headers=API_AUTH).json()["model_version"] == model.version)

    wait_until(model_read, 10, "the API to read the model", interval=0.1)
    time.sleep(0.5)  # and a whole refresh after it: it read the case recorded before the model

    answers: dict[str, dict[str, Any]] = {}
    for number, (account, merchant, amount) in enumerate(SEQUENCE):
        tranid = f"T-{number}"
        at = to_cassandra_time(datetime.now(UTC))
        record = {"account_no": account, "tranid": tranid, "tranpostdt": at.isoformat(), "amount": amount,
                  "merchant_id": merchant, "merchant_category": "5411", "channel": "online"}  # fmt: skip
        response = api.post("/authorize", json=record, headers=API_AUTH)
        assert response.status_code == 200, response.text
        answers[tranid] = response.json()
        assert answers[tranid]["model_version"] == model.version, "the API has not read the model"
        send_transactions(isolated_config.kafka, [record], rate=0)

        def stored(account: str = account, tranid: str = tranid, at: datetime = at, merchant: str = merchant) -> bool:
            row = cassandra.execute(
                f"SELECT amount, risk_score FROM {keyspace}.transaction WHERE account_no = %s AND tranpostdt = %s "
                "AND tranid = %s",
                (account, at, tranid),
            ).one()
            by_day = cassandra.execute(
                f"SELECT tranid FROM {keyspace}.transaction_by_merchant_day WHERE merchant_id = %s AND day = %s "
                "AND tranpostdt = %s AND account_no = %s AND tranid = %s",
                (merchant, at.date(), at, account, tranid),
            ).one()
            return row is not None and row.amount is not None and row.risk_score is not None and by_day is not None

        wait_until(stored, 180, f"the job stored and scored {tranid}", interval=0.3)

    # The job's scores, hits and alerts, once its last batch is done.
    days = {datetime.fromisoformat(answer["tranpostdt"]).date() for answer in answers.values()}
    merchants = {merchant for _, merchant, _ in SEQUENCE}

    def job_hits() -> dict[str, set[Evidence]]:
        found: dict[str, set[Evidence]] = {tranid: set() for tranid in answers}
        for merchant in merchants:
            for day in days:
                for row in cassandra.execute(
                    "SELECT tranid, kind, rule_id, evidence_value, evidence_limit "
                    f"FROM {keyspace}.rule_hit_by_merchant_day WHERE merchant_id = %s AND day = %s",
                    (merchant, day),
                ):
                    evidence = (row.kind, str(row.rule_id), _rounded(row.evidence_value), _rounded(row.evidence_limit))
                    found.setdefault(row.tranid, set()).add(evidence)
        return found

    def flagged() -> set[str]:
        return {
            row.tranid
            for day in days
            for row in cassandra.execute(f"SELECT tranid FROM {keyspace}.cust_fraud_by_day WHERE day = %s", (day,))
        }

    def reasons_of(answer: dict[str, Any]) -> set[Evidence]:
        return {
            (reason["kind"], reason["rule_id"], _rounded(reason["value"]), _rounded(reason["limit"]))
            for reason in answer["reasons"]
            if reason["signal"] in ("rule", "similarity")
        }

    expected = {tranid: reasons_of(answer) for tranid, answer in answers.items()}
    wait_until(lambda: job_hits() == expected, 60, "the job's hits to be the API's reasons", interval=0.5)
    changed = {
        tranid for tranid, answer in answers.items() if any(r["kind"] == "profile_change" for r in answer["reasons"])
    }
    wait_until(lambda: flagged() == changed, 30, "the job's alerts to be the API's profile-change reasons")

    # What the sequence is there for did happen.
    kinds = {tranid: {kind for kind, *_ in evidence} for tranid, evidence in expected.items()}
    assert {"new_merchant"} <= kinds["T-1"] and "new_merchant" not in kinds["T-3"]
    assert {"amount_over", "merchant_amount_over", "new_merchant"} <= kinds["T-4"]
    assert "merchant_daily_count" in kinds["T-7"] and "merchant_daily_count" not in kinds["T-8"]
    assert changed == {"T-5", "T-6", "T-8"}
    decisions = {tranid: answer["decision"] for tranid, answer in answers.items()}
    assert decisions["T-4"] in ("confirm", "block") and decisions["T-5"] in ("confirm", "block")

    features: dict[str, list[float]] = {}
    for tranid, answer in answers.items():
        account = answer["account_no"]
        row = cassandra.execute(
            f"SELECT risk_score, risk_features, fraud_probability, model_version, nearest_cases "
            f"FROM {keyspace}.transaction WHERE account_no = %s AND tranpostdt = %s AND tranid = %s",
            (account, datetime.fromisoformat(answer["tranpostdt"]), tranid),
        ).one()
        features[tranid] = (
            cassandra.execute(
                f"SELECT risk_features FROM {keyspace}.authorization WHERE account_no = %s AND tranpostdt = %s "
                "AND tranid = %s",
                (account, datetime.fromisoformat(answer["tranpostdt"]), tranid),
            )
            .one()
            .risk_features
        )
        assert answer["risk_score"] == pytest.approx(row.risk_score, abs=1e-5), tranid
        np.testing.assert_allclose(features[tranid], row.risk_features, atol=1e-5, err_msg=tranid)
        assert answer["fraud_probability"] == pytest.approx(row.fraud_probability, abs=1e-5), tranid
        assert answer["model_version"] == row.model_version == model.version
        assert [case["case_id"] for case in answer["nearest_cases"]] == list(row.nearest_cases), tranid
    # The fraud at M-GROCER ten days ago counts in both paths: its merchant count and its week's and month's
    # shares are not zero there.
    frauds, week = (
        RISK_FEATURES.index("log_merchant_frauds_last_month"),
        RISK_FEATURES.index("merchant_fraud_share_last_week"),
    )
    at_grocer = [f"T-{n}" for n, (_, merchant, _) in enumerate(SEQUENCE) if merchant == "M-GROCER"]
    assert {round(features[tranid][frauds], 4) for tranid in at_grocer} == {round(float(np.log1p(1)), 4)}
    assert all(features[tranid][week] > 0 for tranid in at_grocer)
