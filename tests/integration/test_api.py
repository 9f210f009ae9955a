"""The HTTP API against the real Cassandra of the local stack: good input is stored, every kind of
bad input is refused with the field and the reason, and nothing is half-written."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config, ConfigError
from fraudshop.io.cassandra.reads import ALERT_SUMMARY_COLUMNS
from fraudshop.lab.story import start_api
from fraudshop.service.api import LEGACY_ROUTE, create_app
from fraudshop.service.client import ApiClient
from tests.integration.conftest import config_for_tests

pytestmark = pytest.mark.integration

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_config(isolated_config: Config) -> Config:
    return config_for_tests(f"cassandra.keyspace={isolated_config.cassandra.keyspace}", f"api.token={TOKEN}")


@pytest.fixture
def client(api_config: Config, cassandra: Session) -> Iterator[TestClient]:
    with TestClient(create_app(api_config)) as test_client:
        yield test_client


def change_rows(session: Session, keyspace: str) -> dict[str, list[Any]]:
    return {
        table: list(session.execute(f"SELECT * FROM {keyspace}.{table}"))
        for table in ("cust_change", "cust_change_by_customer", "cust_change_log")
    }


def test_a_change_is_stored_in_every_change_table(client: TestClient, cassandra: Session, api_config: Config) -> None:
    response = client.post(
        "/changes",
        json={
            "account_no": "ACC-1",
            "customer_id": "CUST-1",
            "change_type": "email",
            "changed_at": "2026-11-23T10:15:00+01:00",
        },
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["account_no"], body["customer_id"], body["change_type"]) == ("ACC-1", "CUST-1", "email")
    assert datetime.fromisoformat(body["last_updated"]) == datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    rows = change_rows(cassandra, api_config.cassandra.keyspace)
    assert [len(found) for found in rows.values()] == [1, 1, 1]
    assert rows["cust_change"][0].customer_id == "CUST-1"


def test_change_time_defaults_to_now(client: TestClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = client.post(
        "/changes", json={"account_no": "A", "customer_id": "C", "change_type": "phone"}, headers=AUTH
    )
    assert response.status_code == 201
    assert before <= datetime.fromisoformat(response.json()["last_updated"]) <= datetime.now(UTC)


GOOD = {"account_no": "ACC-1", "customer_id": "CUST-1", "change_type": "address"}


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {**GOOD, "change_type": "shoe size"},
            "change_type",
            "Input should be 'email', 'phone', 'address', 'account_added', 'account_removed' or 'other'",
        ),
        ({**GOOD, "changed_at": "last tuesday"}, "changed_at", "Input should be a valid datetime"),
        ({**GOOD, "changed_at": "2999-01-01T00:00:00Z"}, "changed_at", "is in the future"),
        ({k: v for k, v in GOOD.items() if k != "account_no"}, "account_no", "Field required"),
        ({**GOOD, "customer_id": "   "}, "customer_id", "customer_id must not be empty"),
        ({**GOOD, "account_no": "A" * 65}, "account_no", "account_no is 65 characters, more than 64"),
        ({**GOOD, "account_no": 12345}, "account_no", "Input should be a valid string"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_reason_and_nothing_is_written(
    client: TestClient, cassandra: Session, api_config: Config, body: dict[str, Any], field: str, reason: str
) -> None:
    response = client.post("/changes", json=body, headers=AUTH)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == field
    assert reason in error["msg"]
    assert all(not rows for rows in change_rows(cassandra, api_config.cassandra.keyspace).values())


def test_the_original_form_encoded_call_still_works(client: TestClient, cassandra: Session, api_config: Config) -> None:
    response = client.post(
        LEGACY_ROUTE,
        data={"accountNo": "ACC-7", "customerId": "CUST-7", "chgdate": "2018-07-29 19:53:13.165 GMT"},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    assert response.json()["change_type"] == "other"
    row = cassandra.execute(f"SELECT last_updated FROM {api_config.cassandra.keyspace}.cust_change").one()
    assert row.last_updated == datetime(2018, 7, 29, 19, 53, 13, 165000)


def test_an_unreadable_legacy_date_is_refused(client: TestClient) -> None:
    response = client.post(
        LEGACY_ROUTE, data={"accountNo": "A", "customerId": "C", "chgdate": "yesterday"}, headers=AUTH
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "chgdate"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/changes"),
        ("POST", LEGACY_ROUTE),
        ("GET", "/customers/C/alerts"),
        ("GET", "/alerts?day=2026-11-23"),
        ("GET", "/customers/C/changes"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_every_route_but_health_needs_the_token(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method, path, headers=headers, json=GOOD)
    assert response.status_code == 401
    assert TOKEN not in response.text


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "fraudshop API"


def test_the_api_refuses_to_start_without_a_token(isolated_config: Config) -> None:
    with pytest.raises(ConfigError, match=r"api\.token is not set"):
        create_app(isolated_config)


def insert_alert(session: Session, keyspace: str, customer: str, at: datetime, tranid: str, amount: float) -> None:
    for table, key_column, key in (("cust_fraud", "customer_id", customer), ("cust_fraud_by_day", "day", at.date())):
        extra = ", customer_id" if table == "cust_fraud_by_day" else ""
        session.execute(
            f"INSERT INTO {keyspace}.{table} ({key_column}, tranpostdt, tranid, account_no, amount, change_type, "
            f"last_updated, qualifying_changes, detected_at{extra}) "
            f"VALUES (%s, %s, %s, 'ACC-9', %s, 'email', %s, 1, %s{', %s' if extra else ''})",
            (key, at, tranid, amount, at - timedelta(hours=1), at, *([customer] if extra else [])),
        )


def test_alert_reads_are_newest_first_and_paged(client: TestClient, cassandra: Session, api_config: Config) -> None:
    keyspace = api_config.cassandra.keyspace
    day = datetime(2026, 11, 23, 8, tzinfo=UTC)
    for i in range(5):
        insert_alert(cassandra, keyspace, "CUST-9", day + timedelta(minutes=i), f"T{i}", 10.0 + i)

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"page": token} if token else {})}
        body = client.get("/customers/CUST-9/alerts", params=params, headers=AUTH).json()
        pages.append([item["tranid"] for item in body["items"]])
        token = body["next_page"]
        if token is None:
            break
    assert [tranid for page in pages for tranid in page] == ["T4", "T3", "T2", "T1", "T0"]
    assert all(len(page) <= 2 for page in pages)

    by_day = client.get("/alerts", params={"day": "2026-11-23"}, headers=AUTH).json()["items"]
    assert [item["tranid"] for item in by_day] == ["T4", "T3", "T2", "T1", "T0"]
    assert by_day[0]["customer_id"] == "CUST-9" and by_day[0]["amount"] == 14.0
    assert client.get("/alerts", params={"day": "2026-11-24"}, headers=AUTH).json()["items"] == []
    assert client.get("/alerts", params={"day": "23/11/2026"}, headers=AUTH).status_code == 422
    for forged in ("%%%", "AAAA"):
        assert client.get("/customers/CUST-9/alerts", params={"page": forged}, headers=AUTH).status_code == 400


def test_a_customers_changes_newest_first(client: TestClient) -> None:
    for hour, kind in ((1, "email"), (3, "phone"), (2, "address")):
        change = {**GOOD, "customer_id": "CUST-5", "change_type": kind, "changed_at": f"2026-11-23T0{hour}:00:00Z"}
        assert client.post("/changes", json=change, headers=AUTH).status_code == 201
    items = client.get("/customers/CUST-5/changes", headers=AUTH).json()["items"]
    assert [item["change_type"] for item in items] == ["phone", "address", "email"]


def test_alerts_cli_prints_a_table(
    api_config: Config, cassandra: Session, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keyspace = api_config.cassandra.keyspace
    insert_alert(cassandra, keyspace, "CUST-3", datetime(2026, 11, 23, 9, 30, tzinfo=UTC), "T-cli", 99.5)
    settings = [f"--set=cassandra.port={api_config.cassandra.port}", f"--set=cassandra.keyspace={keyspace}"]
    assert fraudshop_main(["alerts", "--customer", "CUST-3", *settings]) == 0
    assert fraudshop_main(["alerts", "--day", str(date(2026, 11, 23)), *settings]) == 0
    output = capsys.readouterr().out.splitlines()
    # Captured output is not a terminal: a plain table, the alert without its Kafka lineage.
    assert output[0].split() == list(ALERT_SUMMARY_COLUMNS)
    assert set(output[1]) == {"-", " "}
    assert output[2].split()[:7] == ["CUST-3", "2026-11-23", "09:30:00.000", "T-cli", "ACC-9", "99.50", "email"]
    assert output[3] == "1 alert(s)"
    assert output.count("1 alert(s)") == 2


def test_the_running_api_never_logs_its_token_or_credentials(
    api_config: Config, cassandra: Session, tmp_path: Path
) -> None:
    token, password = secrets.token_hex(16), secrets.token_hex(12)
    config = config_for_tests(
        f"cassandra.keyspace={api_config.cassandra.keyspace}",
        f"api.token={token}",
        "cassandra.username=fraudshop-api",
        f"cassandra.password={password}",  # AllowAllAuthenticator ignores it; it must still not show
    )
    api_log = tmp_path / "api.log"
    with open(api_log, "ab") as output:
        api = start_api(config, output)
    try:
        good = ApiClient(f"http://{config.api.host}:{config.api.port}", token)
        good.record_change("ACC-1", "CUST-1", "email")
        assert good.alerts_of_customer("CUST-1") == []
        # A wrong token, an empty one, and bad input with the right token.
        for client, change_type in (
            (ApiClient(good.base_url, token[:-1] + "x"), "email"),
            (ApiClient(good.base_url, ""), "email"),
            (good, "shoe size"),
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                client.record_change("ACC-1", "CUST-1", change_type)
            assert refused.value.code in (401, 403, 422)
            assert token not in refused.value.read().decode()
        # The token without "Bearer".
        request = urllib.request.Request(f"{good.base_url}/changes", data=b"{}", headers={"Authorization": token})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30)
    finally:
        api.terminate()
        api.wait(timeout=30)
    text = api_log.read_text(errors="replace")
    assert "POST /changes" in text  # the log is the API's access log
    assert token not in text
    assert password not in text
