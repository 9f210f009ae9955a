"""Managing fraud-prevention rules against the real Cassandra of the local stack: the API and the CLI add
each kind, list a customer's (their accounts' too) and a merchant's, remove them (gone from the lists
and from the job's ``rule`` partitions, still readable by id), refuse bad input naming the field and
write nothing; the hit routes read what the job writes; and a stored profile writes its accounts'
``account_holder`` rows, through which the job finds a customer's rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra import WriteTimeout, WriteType
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.cassandra.profiles import PendingUpdate, ProfileStore
from fraudshop.io.cassandra.rules import RuleStore
from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.model.profiles import CustomerProfile
from fraudshop.model.rules import RuleDefinition
from fraudshop.model.tables import RULE_HIT_COLUMNS
from fraudshop.service.api import create_app
from tests.integration.conftest import TEST_STACK_SETTINGS, config_for_tests

pytestmark = pytest.mark.integration

TOKEN = "rules-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULE_TABLES = ("rule", "rule_by_id", "rule_by_customer")

#: One rule of each kind: Alice's on all her accounts or on ACC-1, the coffee shop's.
RULES: dict[str, dict[str, Any]] = {
    "amount_over": {"kind": "amount_over", "customer_id": "CUST-ALICE", "amount_limit": 500},
    "new_merchant": {"kind": "new_merchant", "customer_id": "CUST-ALICE", "account_no": "ACC-1"},
    "merchant_monthly_cap": {
        "kind": "merchant_monthly_cap",
        "customer_id": "CUST-ALICE",
        "account_no": "ACC-1",
        "amount_limit": 20,
        "capped_merchant_category": "5818",
    },
    "notify_every_transaction": {"kind": "notify_every_transaction", "customer_id": "CUST-ALICE"},
    "merchant_amount_over": {"kind": "merchant_amount_over", "merchant_id": "M-COFFEE", "amount_limit": 50},
    "merchant_daily_count": {
        "kind": "merchant_daily_count",
        "merchant_id": "M-COFFEE",
        "amount_above": 20,
        "count_limit": 3,
    },
}
EXPECTED: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "amount_over": ("customer", "CUST-ALICE", "confirm_customer", {"amount_limit": 500.0}),
    "new_merchant": ("account", "ACC-1", "confirm_customer", {"lookback_days": 180}),
    "merchant_monthly_cap": (
        "account",
        "ACC-1",
        "confirm_customer",
        {"amount_limit": 20.0, "capped_merchant_category": "5818"},
    ),
    "notify_every_transaction": ("customer", "CUST-ALICE", "notify_customer", {}),
    "merchant_amount_over": ("merchant", "M-COFFEE", "confirm_staff", {"amount_limit": 50.0}),
    "merchant_daily_count": ("merchant", "M-COFFEE", "notify_merchant", {"amount_above": 20.0, "count_limit": 3}),
}


@pytest.fixture
def api_config(isolated_config: Config) -> Config:
    return config_for_tests(
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}", f"api.token={TOKEN}", "api.max_id_length=20"
    )


@pytest.fixture
def client(api_config: Config, cassandra: Session) -> Iterator[TestClient]:
    with TestClient(create_app(api_config)) as test_client:
        yield test_client


def add(client: TestClient, kind: str) -> dict[str, Any]:
    response = client.post("/rules", json=RULES[kind], headers=AUTH)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(client: TestClient, path: str) -> list[str]:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    return [rule["rule_id"] for rule in response.json()]


def partition(session: Session, keyspace: str, scope: str, scope_id: str) -> set[str]:
    rows = session.execute(f"SELECT rule_id FROM {keyspace}.rule WHERE scope = %s AND scope_id = %s", (scope, scope_id))
    return {str(row.rule_id) for row in rows}


def table_sizes(session: Session, keyspace: str) -> list[int]:
    return [len(list(session.execute(f"SELECT * FROM {keyspace}.{table}"))) for table in RULE_TABLES]


def test_each_kind_is_added_listed_read_and_removed(client: TestClient, cassandra: Session, api_config: Config) -> None:
    keyspace = api_config.cassandra.keyspace
    before = datetime.now(UTC) - timedelta(seconds=1)
    added = {kind: add(client, kind) for kind in RULES}
    for kind, rule in added.items():
        scope, scope_id, action, parameters = EXPECTED[kind]
        assert (rule["kind"], rule["scope"], rule["scope_id"], rule["action"]) == (kind, scope, scope_id, action)
        assert rule["parameters"] == parameters
        assert rule["deleted_at"] is None
        assert before <= datetime.fromisoformat(rule["created_at"]) <= datetime.now(UTC)
        assert {name: rule[name] for name in ("customer_id", "account_no", "merchant_id")} == {
            "customer_id": RULES[kind].get("customer_id"),
            "account_no": RULES[kind].get("account_no"),
            "merchant_id": RULES[kind].get("merchant_id"),
        }
        assert client.get(f"/rules/{rule['rule_id']}", headers=AUTH).json() == rule
    ids = {kind: rule["rule_id"] for kind, rule in added.items()}
    issuers = [
        ids[kind] for kind in ("amount_over", "new_merchant", "merchant_monthly_cap", "notify_every_transaction")
    ]
    merchants = [ids["merchant_amount_over"], ids["merchant_daily_count"]]

    # A customer's list has their account-scoped rules too, in the order they were created.
    assert listed(client, "/customers/CUST-ALICE/rules") == issuers
    assert listed(client, "/merchants/M-COFFEE/rules") == merchants
    assert listed(client, "/customers/CUST-BOB/rules") == listed(client, "/merchants/M-OTHER/rules") == []
    # The job reads them by scope: one partition per customer, account and merchant.
    assert partition(cassandra, keyspace, "customer", "CUST-ALICE") == {
        ids["amount_over"],
        ids["notify_every_transaction"],
    }
    assert partition(cassandra, keyspace, "account", "ACC-1") == {ids["new_merchant"], ids["merchant_monthly_cap"]}
    assert partition(cassandra, keyspace, "merchant", "M-COFFEE") == set(merchants)

    # Removed: gone from the lists and from the job's partitions, still readable by id.
    for kind in ("merchant_monthly_cap", "merchant_daily_count"):
        response = client.delete(f"/rules/{ids[kind]}", headers=AUTH)
        assert response.status_code == 200, response.text
        removed = response.json()
        assert {**removed, "deleted_at": None} == added[kind]
        deleted_at = datetime.fromisoformat(removed["deleted_at"])
        assert datetime.fromisoformat(removed["created_at"]) <= deleted_at <= datetime.now(UTC)
        assert client.get(f"/rules/{ids[kind]}", headers=AUTH).json() == removed
        # Removing it again is no error and changes nothing: a resend after a timeout is safe.
        again = client.delete(f"/rules/{ids[kind]}", headers=AUTH)
        assert (again.status_code, again.json()) == (200, removed)
    assert listed(client, "/customers/CUST-ALICE/rules") == [i for i in issuers if i != ids["merchant_monthly_cap"]]
    assert listed(client, "/merchants/M-COFFEE/rules") == [ids["merchant_amount_over"]]
    assert partition(cassandra, keyspace, "account", "ACC-1") == {ids["new_merchant"]}
    assert partition(cassandra, keyspace, "merchant", "M-COFFEE") == {ids["merchant_amount_over"]}
    assert table_sizes(cassandra, keyspace) == [4, 6, 3]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"customer_id": "CUST-ALICE", "amount_limit": 5}, ["body", "kind"]),
        ({**RULES["amount_over"], "kind": "amount_under"}, ["body", "kind"]),
        ({**RULES["amount_over"], "amount_limit": 0}, ["body", "amount_limit"]),
        ({**RULES["amount_over"], "amount_limit": "a lot"}, ["body", "amount_limit"]),
        (
            {key: value for key, value in RULES["amount_over"].items() if key != "amount_limit"},
            ["body", "amount_limit"],
        ),
        ({**RULES["amount_over"], "customer_id": "  "}, ["body", "customer_id"]),
        ({**RULES["amount_over"], "customer_id": "C" * 21}, ["body", "customer_id"]),
        ({**RULES["amount_over"], "scope": "customer"}, ["body", "scope"]),
        ({**RULES["new_merchant"], "lookback_days": 0}, ["body", "lookback_days"]),
        ({**RULES["merchant_monthly_cap"], "capped_merchant_id": "M-APPS"}, ["body", "capped_merchant_id"]),
        ({**RULES["merchant_monthly_cap"], "capped_merchant_category": "58181"}, ["body", "capped_merchant_category"]),
        ({**RULES["merchant_amount_over"], "customer_id": "CUST-ALICE"}, ["body", "customer_id"]),
        ({**RULES["merchant_daily_count"], "count_limit": -1}, ["body", "count_limit"]),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field_and_writes_nothing(
    client: TestClient, cassandra: Session, api_config: Config, body: dict[str, Any], location: list[str]
) -> None:
    response = client.post("/rules", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [location]
    assert table_sizes(cassandra, api_config.cassandra.keyspace) == [0, 0, 0]


def test_a_body_that_is_no_json_object_is_refused(client: TestClient) -> None:
    for body in (b"[1, 2]", b"{not json"):
        response = client.post("/rules", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 422, response.text


def test_unknown_rules_are_404_and_a_rule_id_must_be_a_uuid(client: TestClient) -> None:
    unknown = uuid.uuid4()
    assert client.get(f"/rules/{unknown}", headers=AUTH).status_code == 404
    assert client.delete(f"/rules/{unknown}", headers=AUTH).status_code == 404
    for method in ("GET", "DELETE"):
        response = client.request(method, "/rules/not-a-uuid", headers=AUTH)
        assert response.status_code == 422, response.text
        assert [error["loc"] for error in response.json()["detail"]] == [["path", "rule_id"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/rules"),
        ("GET", f"/rules/{uuid.UUID(int=1)}"),
        ("DELETE", f"/rules/{uuid.UUID(int=1)}"),
        ("GET", "/customers/CUST-ALICE/rules"),
        ("GET", "/merchants/M-COFFEE/rules"),
        ("GET", "/customers/CUST-ALICE/rule-hits"),
        ("GET", "/merchants/M-COFFEE/rule-hits"),
    ],
)
def test_every_rule_route_needs_the_token(client: TestClient, cassandra: Session, method: str, path: str) -> None:
    body = RULES["amount_over"] if method == "POST" else None
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text


def test_a_rule_cassandra_did_not_acknowledge_is_a_503_saying_to_look_before_resending(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed_out(self: RuleStore, definition: RuleDefinition, now: datetime) -> None:
        raise WriteTimeout("the batch log write timed out", write_type=WriteType.BATCH_LOG)

    monkeypatch.setattr(RuleStore, "add", timed_out)
    response = client.post("/rules", json=RULES["amount_over"], headers=AUTH)
    assert response.status_code == 503, response.text
    assert "list the rules before sending it again" in response.json()["detail"]
    assert response.headers["Retry-After"]


def stack_arguments(keyspace: str) -> list[str]:
    return [
        *(a for setting in TEST_STACK_SETTINGS for a in ("--set", setting)),
        "--set",
        f"cassandra.keyspace={keyspace}",
    ]


def test_rules_on_the_command_line(cassandra: Session, api_config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    keyspace = api_config.cassandra.keyspace

    def run(*arguments: str) -> int:
        return fraudshop_main(["rules", *arguments, *stack_arguments(keyspace)])

    cap = ("--customer", "CUST-BOB", "--account", "ACC-9", "--amount-limit", "20", "--capped-merchant-id", "M-APPS")
    assert run("add", "merchant_monthly_cap", *cap) == 0
    out = capsys.readouterr().out
    rule_id = out.rsplit("added rule ", 1)[1].strip()
    assert "merchant_monthly_cap" in out and '{"amount_limit":20.0,"capped_merchant_id":"M-APPS"}' in out
    assert run("add", "merchant_amount_over", "--merchant", "M-COFFEE", "--amount-limit", "50") == 0
    capsys.readouterr()

    # Refused before anything is written, naming the field (the model's) or what is missing.
    assert run("add", "merchant_amount_over", "--merchant", "M-COFFEE", "--amount-limit", "-1") == 2
    assert "amount_limit:" in capsys.readouterr().err
    assert run("add", "amount_over", "--customer", "CUST-BOB", "--lookback-days", "5", "--amount-limit", "5") == 2
    assert "lookback_days:" in capsys.readouterr().err
    assert run("add", "amount_limit", "--customer", "CUST-BOB") == 2
    assert "needs a KIND" in capsys.readouterr().err
    assert run("list") == 2
    assert "needs --customer or --merchant" in capsys.readouterr().err
    assert table_sizes(cassandra, keyspace) == [2, 2, 1]

    assert run("list", "--customer", "CUST-BOB") == 0
    out = capsys.readouterr().out
    assert rule_id in out and "account" in out and "ACC-9" in out and "1 rule(s) in force" in out
    assert run("list", "--merchant", "M-COFFEE") == 0
    assert "merchant_amount_over" in capsys.readouterr().out

    assert run("remove", rule_id) == 0
    assert f"removed rule {rule_id}" in capsys.readouterr().out
    assert run("remove", rule_id) == 0  # again: no error
    capsys.readouterr()
    assert run("list", "--customer", "CUST-BOB") == 0
    assert "0 rule(s) in force" in capsys.readouterr().out
    assert run("remove", str(uuid.uuid4())) == 1
    assert "no rule" in capsys.readouterr().err
    assert run("remove", "not-a-uuid") == 2
    assert "RULE_ID" in capsys.readouterr().err
    assert table_sizes(cassandra, keyspace) == [1, 2, 0]


def hit(tranpostdt: datetime, tranid: str, merchant_id: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in RULE_HIT_COLUMNS}
    return {
        **row,
        "customer_id": "CUST-ALICE",
        "merchant_id": merchant_id,
        "day": tranpostdt.date(),
        "tranpostdt": tranpostdt,
        "tranid": tranid,
        "rule_id": uuid.UUID(int=7),
        "account_no": "ACC-1",
        "kind": "amount_over",
        "action": "confirm_customer",
        "amount": 600.0,
        "evidence_value": 600.0,
        "evidence_limit": 500.0,
        "reason": "amount 600.00 is over the customer's limit of 500.00",
        "rule_parameters": '{"amount_limit":500.0}',
        "hit_id": tranid * 4,
        "detected_at": tranpostdt + timedelta(seconds=2),
        "source_topic": "transactions",
        "source_partition": 0,
        "source_offset": 42,
        **fields,
    }


def test_hits_are_read_by_customer_and_by_merchant_day(
    client: TestClient, cassandra: Session, api_config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job writes the hits (not yet): rows written here as it will."""
    # Taken now, not when the module was imported: the API's default day is today's at the request, and a
    # suite that crosses midnight UTC must not see yesterday's hits as today's. T2 and T3 are today's.
    now = datetime.now(UTC).replace(microsecond=0)
    yesterday = now - timedelta(days=1)
    midnight = now.replace(hour=0, minute=0, second=0)
    keyspace = api_config.cassandra.keyspace
    hits = [
        hit(yesterday, "T1", "M-COFFEE"),
        hit(midnight + (now - midnight) / 3, "T2", "M-COFFEE", amount=75.0),
        hit(midnight + (now - midnight) * 2 / 3, "T3", "M-BOOKS"),
    ]
    for row in hits:
        for table in ("rule_hit", "rule_hit_by_merchant_day"):
            cassandra.execute(
                insert_statement(keyspace, table, RULE_HIT_COLUMNS).replace("?", "%s"),
                [row[column] for column in RULE_HIT_COLUMNS],
            )

    def tranids(path: str) -> list[str]:
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200, response.text
        return [item["tranid"] for item in response.json()["items"]]

    assert tranids("/customers/CUST-ALICE/rule-hits") == ["T3", "T2", "T1"]
    assert tranids("/customers/CUST-BOB/rule-hits") == []
    # The day defaults to today (UTC).
    assert tranids("/merchants/M-COFFEE/rule-hits") == ["T2"]
    assert tranids(f"/merchants/M-COFFEE/rule-hits?day={yesterday.date()}") == ["T1"]
    assert tranids(f"/merchants/M-BOOKS/rule-hits?day={now.date()}") == ["T3"]

    item = client.get("/merchants/M-COFFEE/rule-hits", headers=AUTH).json()["items"][0]
    assert {name: item[name] for name in ("day", "rule_id", "amount", "hit_id", "source_offset")} == {
        "day": now.date().isoformat(),
        "rule_id": str(uuid.UUID(int=7)),
        "amount": 75.0,
        "hit_id": "T2T2T2T2",
        "source_offset": 42,
    }
    assert set(item) == set(RULE_HIT_COLUMNS)

    # Paged as the other reads are.
    first = client.get("/customers/CUST-ALICE/rule-hits?limit=2", headers=AUTH).json()
    assert [i["tranid"] for i in first["items"]] == ["T3", "T2"]
    rest = client.get(f"/customers/CUST-ALICE/rule-hits?limit=2&page={first['next_page']}", headers=AUTH).json()
    assert ([i["tranid"] for i in rest["items"]], rest["next_page"]) == (["T1"], None)
    assert client.get("/customers/CUST-ALICE/rule-hits?page=bogus", headers=AUTH).status_code == 400
    response = client.get("/merchants/M-COFFEE/rule-hits?day=yesterday", headers=AUTH)
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "day"]]

    stack = stack_arguments(keyspace)
    assert fraudshop_main(["hits", "--customer", "CUST-ALICE", "--limit", "2", *stack]) == 0
    out = capsys.readouterr().out
    assert "T3" in out and "T2" in out and "T1" not in out and "2 hit(s) (more: raise --limit)" in out
    assert fraudshop_main(["hits", "--merchant", "M-COFFEE", "--day", str(yesterday.date()), *stack]) == 0
    out = capsys.readouterr().out
    assert "T1" in out and "amount 600.00 is over" in out and "1 hit(s)" in out
    assert fraudshop_main(["hits", "--customer", "CUST-ALICE", "--day", str(yesterday.date()), *stack]) == 2


ALICE: dict[str, Any] = {
    "email": "alice@example.com",
    "phone": "+44 20 7946 0018",
    "address": {"lines": ["12 High Street"], "city": "London", "postcode": "SW1A 1AA", "country": "GB"},
    "accounts": ["ACC-1", "ACC-2"],
}
LAST_WEEK = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)


def holders(session: Session, keyspace: str) -> dict[str, str]:
    return {row.account_no: row.customer_id for row in session.execute(f"SELECT * FROM {keyspace}.account_holder")}


def test_a_stored_profile_writes_who_holds_each_of_its_accounts(
    client: TestClient, cassandra: Session, api_config: Config
) -> None:
    keyspace = api_config.cassandra.keyspace

    def put(accounts: list[str], at: datetime | None = None, customer: str = "CUST-ALICE") -> int:
        body = {**ALICE, "accounts": accounts, **({"changed_at": at.isoformat()} if at else {})}
        response = client.put(f"/customers/{customer}/profile", json=body, headers=AUTH)
        assert response.status_code in (200, 201), response.text
        return int(response.status_code)

    assert put(["ACC-1", "ACC-2"], LAST_WEEK) == 201  # the baseline
    assert holders(cassandra, keyspace) == {"ACC-1": "CUST-ALICE", "ACC-2": "CUST-ALICE"}
    assert put(["ACC-1", "ACC-2", "ACC-3"]) == 200  # an account added
    assert holders(cassandra, keyspace) == {"ACC-1": "CUST-ALICE", "ACC-2": "CUST-ALICE", "ACC-3": "CUST-ALICE"}
    assert put(["ACC-3"]) == 200  # two removed
    assert holders(cassandra, keyspace) == {"ACC-3": "CUST-ALICE"}
    assert put(["ACC-2"], customer="CUST-BOB") == 201  # another customer's
    assert holders(cassandra, keyspace) == {"ACC-3": "CUST-ALICE", "ACC-2": "CUST-BOB"}
    assert put([]) == 200  # Alice holds none: a change recorded on no account, still her holder row goes
    assert holders(cassandra, keyspace) == {"ACC-2": "CUST-BOB"}


def test_an_update_left_pending_writes_its_holders_when_it_is_completed(cassandra: Session, api_config: Config) -> None:
    keyspace = api_config.cassandra.keyspace
    store = ProfileStore(cassandra, keyspace, timedelta(milliseconds=1))

    def profile(*accounts: str) -> CustomerProfile:
        address = ALICE["address"]
        return CustomerProfile.parse(
            "CUST-ALICE",
            ALICE["email"],
            ALICE["phone"],
            address["lines"],
            address["city"],
            address["postcode"],
            address["country"],
            list(accounts),
        )

    store.set_profile(profile("ACC-1", "ACC-2"), LAST_WEEK)
    # A writer claims an update (ACC-2 goes, ACC-4 comes), then dies before recording it.
    claimed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    claim = PendingUpdate(profile("ACC-1", "ACC-4"), claimed_at).to_json()
    applied = cassandra.execute(
        f"UPDATE {keyspace}.customer SET pending_update = %s, pending_since = %s WHERE customer_id = 'CUST-ALICE' "
        "IF pending_update = null",
        (claim, claimed_at),
    ).one()
    assert applied[0], "the claim must apply"
    assert holders(cassandra, keyspace) == {"ACC-1": "CUST-ALICE", "ACC-2": "CUST-ALICE"}
    assert store.complete_stale_updates() == 1
    assert holders(cassandra, keyspace) == {"ACC-1": "CUST-ALICE", "ACC-4": "CUST-ALICE"}
