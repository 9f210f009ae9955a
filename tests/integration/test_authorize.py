"""POST /authorize against the real Cassandra of the local stack: the stored state (rules, profile changes,
history, known cases found by ANN, the newest model) gives the decision and its reasons, and the decision is
recorded; bad input is refused with its field and records nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.model.authorization import StoredState, vectorised
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase
from fraudshop.model.changes import to_cassandra_time
from fraudshop.model.risk import RISK_FEATURE_SET, RISK_FEATURES, RiskModel
from fraudshop.model.rule_evaluation import Txn
from fraudshop.service.api import create_app
from tests.integration.conftest import API_AUTH, API_TOKEN
from tests.risk_models import a_risk_model

pytestmark = pytest.mark.integration


def now() -> datetime:
    return to_cassandra_time(datetime.now(UTC))


@pytest.fixture
def api(isolated_config: Config, cassandra: Session) -> Iterator[TestClient]:
    settings = (f"api.token={API_TOKEN}", "authorize.refresh_seconds=0.2")
    with TestClient(create_app(isolated_config.with_settings(*settings))) as client:
        yield client


def transaction(tranid: str, amount: float, at: datetime, merchant: str = "M-GROCER") -> dict[str, Any]:
    return {
        "account_no": "ACC-A",
        "tranid": tranid,
        "tranpostdt": at.isoformat(),
        "amount": amount,
        "merchant_id": merchant,
        "merchant_category": "5411",
        "channel": "online",
    }


def store_history(session: Session, keyspace: str, at: datetime) -> list[Txn]:
    """Three transactions of ACC-A at M-GROCER in the days before ``at``."""
    history = [
        Txn("ACC-A", at - timedelta(days=days), f"H{days}", 20.0 + days, "M-GROCER", "5411") for days in (1, 2, 4)
    ]
    for txn in history:
        session.execute(
            f"INSERT INTO {keyspace}.transaction "
            "(account_no, tranpostdt, tranid, amount, merchant_id, merchant_category) VALUES (%s, %s, %s, %s, %s, %s)",
            (txn.account_no, txn.tranpostdt, txn.tranid, txn.amount, txn.merchant_id, txn.merchant_category),
        )
    return history


def a_model(intercept: float) -> RiskModel:
    return a_risk_model(to_cassandra_time(datetime.now(UTC)), intercept)


def authorized(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/authorize", json=body, headers=API_AUTH)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_quiet_transaction_is_allowed_for_no_reason_and_recorded(
    api: TestClient, cassandra: Session, isolated_config: Config
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    at = now()
    store_history(cassandra, keyspace, at)
    answer = authorized(api, transaction("T-1", 25.0, at))
    assert (answer["decision"], answer["reasons"], answer["fraud_probability"]) == ("allow", [], None)
    row = cassandra.execute(f"SELECT * FROM {keyspace}.authorization WHERE account_no = 'ACC-A'").one()
    assert (row.tranid, row.decision, row.amount, row.reason_kinds) == ("T-1", "allow", 25.0, None)
    assert row.risk_feature_set == RISK_FEATURE_SET and len(row.risk_features) == len(RISK_FEATURES)


def test_every_signal_gives_its_reason_and_the_most_severe_decides(
    api: TestClient, cassandra: Session, isolated_config: Config
) -> None:
    keyspace = isolated_config.cassandra.keyspace
    # The customer's amount cap and first-seen-merchant rules, on the account.
    for rule in (
        {"kind": "amount_over", "customer_id": "CUST-A", "account_no": "ACC-A", "amount_limit": 100.0},
        {"kind": "new_merchant", "customer_id": "CUST-A", "account_no": "ACC-A", "lookback_days": 30},
    ):
        assert api.post("/rules", json=rule, headers=API_AUTH).status_code == 201
    at = now()  # after the rules were created: they apply from then on
    history = store_history(cassandra, keyspace, at)
    change = {
        "account_no": "ACC-A",
        "customer_id": "CUST-A",
        "change_type": "email",
        "changed_at": (at - timedelta(hours=2)).isoformat(),
    }
    assert api.post("/changes", json=change, headers=API_AUTH).status_code == 201
    # Cases at the transaction's own vector (as computed with the history and change stored), found by ANN.
    body = transaction("T-2", 150.0, at, merchant="M-NEW")
    record = {**body, "tranpostdt": at}
    state = StoredState(None, (), history, ((at - timedelta(hours=2), "email"),))
    vector = tuple(float(x) for x in vectorised(record, state).vector)
    cases = [
        FraudCase(str(uuid.uuid4()), vector, CaseLabel.FRAUD, CaseSource.ANALYST, "takeover", at, "analyst-1")
        for _ in range(3)
    ]
    CaseStore(cassandra, keyspace).record(cases)

    answer = authorized(api, body)
    kinds = {reason["kind"]: reason for reason in answer["reasons"]}
    assert set(kinds) == {"amount_over", "new_merchant", "profile_change", "similar_to_fraud"}
    assert answer["decision"] == "confirm"
    assert kinds["amount_over"]["action"] == "confirm_customer" and kinds["amount_over"]["value"] == 150.0
    assert kinds["profile_change"]["value"] == pytest.approx(2.0)
    assert answer["risk_score"] == pytest.approx(1.0, abs=1e-3)
    assert {case["case_id"] for case in answer["nearest_cases"]} == {case.case_id for case in cases}

    # A model trained since: read within the refresh interval; its probability (the logistic of 0.5) blocks.
    model = a_model(0.5)
    ModelStore(cassandra, keyspace).record(model)
    deadline = time.monotonic() + 10
    while (answer := authorized(api, {**body, "tranid": "T-3"}))["model_version"] is None:
        assert time.monotonic() < deadline, "the model was not read"
        time.sleep(0.2)
    assert answer["model_version"] == model.version
    assert answer["fraud_probability"] == pytest.approx(0.6225, abs=1e-4)
    assert answer["decision"] == "block"
    assert [reason["outcome"] for reason in answer["reasons"] if reason["kind"] == "fraud_probability"] == ["block"]
    row = cassandra.execute(
        f"SELECT * FROM {keyspace}.authorization WHERE account_no = 'ACC-A' AND tranpostdt = %s AND tranid = 'T-3'",
        (at,),
    ).one()
    assert (row.decision, row.model_version) == ("block", model.version)
    assert row.reason_kinds == [reason["kind"] for reason in answer["reasons"]]
    assert row.reason_outcomes == [reason["outcome"] for reason in answer["reasons"]]


BAD_FIELDS: tuple[tuple[str, object], ...] = (
    ("amount", "twelve"),
    ("amount", "NaN"),
    ("channel", "pigeon"),
    ("merchant_category", "54"),
    ("account_no", "   "),
    ("tranid", ""),
    ("tranpostdt", "yesterday"),
)


def test_bad_input_gets_a_422_naming_the_field_and_records_nothing(
    api: TestClient, cassandra: Session, isolated_config: Config
) -> None:
    too_late = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    for field, value in (*BAD_FIELDS, ("tranpostdt", too_late)):
        response = api.post("/authorize", json={**transaction("T-BAD", 10.0, now()), field: value}, headers=API_AUTH)
        assert response.status_code == 422, (field, value, response.text)
        assert any(error["loc"][-1] == field for error in response.json()["detail"]), response.text
    assert api.post("/authorize", json=transaction("T-4", 10.0, now())).status_code == 401  # no token
    keyspace = isolated_config.cassandra.keyspace
    assert list(cassandra.execute(f"SELECT * FROM {keyspace}.authorization")) == []
