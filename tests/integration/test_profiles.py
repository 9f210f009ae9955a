"""Customer profiles against the real Cassandra of the local stack: the API and the CLI store a
profile, record exactly what really changed, refuse bad input with the field and write nothing, and
concurrent or interrupted updates record each change once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra import WriteTimeout, WriteType
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.cassandra.profiles import PendingUpdate, ProfileOutcome, ProfileStore
from fraudshop.model.profiles import CustomerProfile
from fraudshop.service.api import create_app
from tests.integration.conftest import TEST_STACK_SETTINGS, config_for_tests

pytestmark = pytest.mark.integration

TOKEN = "profile-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHANGE_TABLES = ("cust_change", "cust_change_by_customer", "cust_change_log")
LAST_WEEK = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)

ALICE: dict[str, Any] = {
    "email": "alice@example.com",
    "phone": "+44 20 7946 0018",
    "address": {"lines": ["Flat 2", "12 High Street"], "city": "London", "postcode": "SW1A 1AA", "country": "GB"},
    "accounts": ["ACC-1", "ACC-2"],
}


def edited(**fields: Any) -> dict[str, Any]:
    return {**ALICE, **fields}


def parse(body: dict[str, Any], customer: str = "CUST-ALICE") -> CustomerProfile:
    address = body["address"]
    return CustomerProfile.parse(
        customer,
        body["email"],
        body["phone"],
        address["lines"],
        address["city"],
        address["postcode"],
        address["country"],
        body["accounts"],
    )


@pytest.fixture
def api_config(isolated_config: Config) -> Config:
    return config_for_tests(
        f"cassandra.keyspace={isolated_config.cassandra.keyspace}",
        f"api.token={TOKEN}",
        "profiles.stale_update_seconds=1",
        "profiles.sweep_interval_seconds=0.5",
    )


@pytest.fixture
def client(api_config: Config, cassandra: Session) -> Iterator[TestClient]:
    with TestClient(create_app(api_config)) as test_client:
        yield test_client


def put(client: TestClient, body: dict[str, Any], customer: str = "CUST-ALICE", at: datetime | None = None) -> Any:
    response = client.put(
        f"/customers/{customer}/profile",
        json={**body, "changed_at": at.isoformat()} if at else body,
        headers=AUTH,
    )
    return response


def change_rows(session: Session, keyspace: str) -> dict[str, list[Any]]:
    return {table: list(session.execute(f"SELECT * FROM {keyspace}.{table}")) for table in CHANGE_TABLES}


def recorded(session: Session, keyspace: str) -> set[tuple[str, str]]:
    return {(row.account_no, row.change_type) for row in session.execute(f"SELECT * FROM {keyspace}.cust_change")}


def customer_row(session: Session, keyspace: str, customer: str = "CUST-ALICE") -> Any:
    return session.execute(f"SELECT * FROM {keyspace}.customer WHERE customer_id = %s", (customer,)).one()


def test_first_profile_is_a_baseline_stored_normalised(
    client: TestClient, cassandra: Session, api_config: Config
) -> None:
    keyspace = api_config.cassandra.keyspace
    response = put(client, edited(email="  alice@EXAMPLE.com ", phone="020 7946 0018"), at=LAST_WEEK)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "baseline"
    assert response.json()["changes"] == []
    assert all(not rows for rows in change_rows(cassandra, keyspace).values())

    stored = client.get("/customers/CUST-ALICE/profile", headers=AUTH).json()
    assert (stored["email"], stored["phone"], stored["accounts"]) == (
        "alice@example.com",
        "+442079460018",
        ["ACC-1", "ACC-2"],
    )
    assert datetime.fromisoformat(stored["updated_at"]).replace(tzinfo=UTC) == LAST_WEEK
    assert client.get("/customers/NOBODY/profile", headers=AUTH).status_code == 404


def test_the_same_profile_or_a_formatting_edit_records_nothing(
    client: TestClient, cassandra: Session, api_config: Config
) -> None:
    keyspace = api_config.cassandra.keyspace
    assert put(client, ALICE, at=LAST_WEEK).status_code == 201
    reformatted = edited(
        email="alice@Example.COM ",
        phone="020-7946-0018",
        address={"lines": ["flat 2, 12 high street."], "city": "LONDON", "postcode": "sw1a1aa", "country": "GBR"},
        accounts=["ACC-2", "ACC-1"],
    )
    for body in (ALICE, reformatted):
        response = put(client, body)
        assert response.status_code == 200, response.text
        assert (response.json()["outcome"], response.json()["changes"]) == ("unchanged", [])
    assert all(not rows for rows in change_rows(cassandra, keyspace).values())
    assert customer_row(cassandra, keyspace).updated_at.replace(tzinfo=UTC) == LAST_WEEK


def test_each_real_change_is_recorded_once_per_account_in_the_three_tables(
    client: TestClient, cassandra: Session, api_config: Config
) -> None:
    keyspace = api_config.cassandra.keyspace
    assert put(client, ALICE, at=LAST_WEEK).status_code == 201
    changed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    response = put(client, edited(email="alice.new@example.com", accounts=["ACC-1", "ACC-2", "ACC-3"]), at=changed_at)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "changed"
    expected = {(a, t) for a in ("ACC-1", "ACC-2", "ACC-3") for t in ("email", "account_added")}
    assert {(change["account_no"], change["change_type"]) for change in body["changes"]} == expected
    rows = change_rows(cassandra, keyspace)
    assert [len(found) for found in rows.values()] == [6, 6, 6]
    assert {row.customer_id for found in rows.values() for row in found} == {"CUST-ALICE"}
    assert {row.last_updated.replace(tzinfo=UTC) for row in rows["cust_change"]} == {changed_at}
    row = customer_row(cassandra, keyspace)
    assert (row.email, row.accounts, row.pending_update) == ("alice.new@example.com", {"ACC-1", "ACC-2", "ACC-3"}, None)

    # The address moves and an account goes: recorded on the accounts the customer keeps.
    moved = edited(
        email="alice.new@example.com",
        address={"lines": ["3 Mill Lane"], "city": "Leeds", "postcode": "LS1 4AP", "country": "GB"},
        accounts=["ACC-1"],
    )
    body = put(client, moved).json()
    assert {(c["account_no"], c["change_type"]) for c in body["changes"]} == {
        ("ACC-1", "address"),
        ("ACC-1", "account_removed"),
    }


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (edited(email="alice@"), ["body", "email"]),
        (edited(email="not an address"), ["body", "email"]),
        (edited(phone="12"), ["body", "phone"]),
        (edited(phone="call me"), ["body", "phone"]),
        (edited(address={**ALICE["address"], "country": "Atlantis"}), ["body", "address", "country"]),
        (edited(address={**ALICE["address"], "lines": ["  "]}), ["body", "address", "lines"]),
        (edited(accounts=["ACC-1", " "]), ["body", "accounts"]),
        (edited(changed_at="2999-01-01T00:00:00Z"), ["body", "changed_at"]),
        ({key: value for key, value in ALICE.items() if key != "email"}, ["body", "email"]),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    client: TestClient, cassandra: Session, api_config: Config, body: dict[str, Any], location: list[str]
) -> None:
    keyspace = api_config.cassandra.keyspace
    assert put(client, ALICE, at=LAST_WEEK).status_code == 201
    response = put(client, body)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [location]
    assert all(not rows for rows in change_rows(cassandra, keyspace).values())
    row = customer_row(cassandra, keyspace)
    assert (row.email, row.updated_at.replace(tzinfo=UTC), row.pending_update) == (ALICE["email"], LAST_WEEK, None)


def test_an_update_older_than_the_stored_profile_is_a_conflict(client: TestClient, api_config: Config) -> None:
    assert put(client, ALICE, at=LAST_WEEK).status_code == 201
    response = put(client, edited(email="old@example.com"), at=LAST_WEEK - timedelta(days=1))
    assert response.status_code == 409, response.text
    assert put(client, ALICE, at=LAST_WEEK - timedelta(days=1)).json()["outcome"] == "unchanged"


def test_concurrent_identical_updates_record_each_change_once(cassandra: Session, api_config: Config) -> None:
    keyspace = api_config.cassandra.keyspace
    store = ProfileStore(cassandra, keyspace, timedelta(seconds=10))
    before = parse(ALICE)
    store.set_profile(before, LAST_WEEK)
    after = parse(edited(email="alice.new@example.com"))
    outcomes: list[ProfileOutcome] = []
    start = threading.Barrier(6)

    def update() -> None:
        start.wait()
        outcomes.append(store.set_profile(after, datetime.now(UTC)).outcome)

    threads = [threading.Thread(target=update) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == {ProfileOutcome.CHANGED: 1, ProfileOutcome.UNCHANGED: 5}
    logged = Counter((row.account_no, row.change_type) for row in change_rows(cassandra, keyspace)["cust_change_log"])
    assert logged == {("ACC-1", "email"): 1, ("ACC-2", "email"): 1}


def test_an_update_left_pending_by_a_dead_writer_is_completed_by_the_sweep(
    client: TestClient, cassandra: Session, api_config: Config
) -> None:
    keyspace = api_config.cassandra.keyspace
    assert put(client, ALICE, at=LAST_WEEK).status_code == 201
    # A writer claims an update, then dies before recording its changes.
    changed_at = datetime.now(UTC).replace(microsecond=0)
    claim = PendingUpdate(parse(edited(phone="+1 650 253 0000")), changed_at).to_json()
    applied = cassandra.execute(
        f"UPDATE {keyspace}.customer SET pending_update = %s, pending_since = %s "
        "WHERE customer_id = 'CUST-ALICE' IF pending_update = null",
        (claim, changed_at),
    ).one()
    assert applied[0], "the claim must apply"
    assert not recorded(cassandra, keyspace)

    # The API's sweep (every 0.5 s here) completes it once it is older than 1 s.
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while customer_row(cassandra, keyspace).pending_update is not None and datetime.now(UTC) < deadline:
        threading.Event().wait(0.25)
    row = customer_row(cassandra, keyspace)
    assert (row.phone, row.pending_update, row.updated_at.replace(tzinfo=UTC)) == ("+16502530000", None, changed_at)
    assert recorded(cassandra, keyspace) == {("ACC-1", "phone"), ("ACC-2", "phone")}


def test_a_writer_completes_a_stale_pending_update_before_its_own(cassandra: Session, api_config: Config) -> None:
    keyspace = api_config.cassandra.keyspace
    store = ProfileStore(cassandra, keyspace, timedelta(milliseconds=1))
    store.set_profile(parse(ALICE), LAST_WEEK)
    claimed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    claim = PendingUpdate(parse(edited(phone="+1 650 253 0000")), claimed_at).to_json()
    cassandra.execute(
        f"UPDATE {keyspace}.customer SET pending_update = %s, pending_since = %s WHERE customer_id = 'CUST-ALICE' "
        "IF pending_update = null",
        (claim, claimed_at),
    )
    update = store.set_profile(parse(edited(phone="+1 650 253 0000", email="a2@example.com")), datetime.now(UTC))
    assert update.outcome is ProfileOutcome.CHANGED
    assert [change.change_type for change in update.changes] == ["email", "email"]
    assert recorded(cassandra, keyspace) == {(a, t) for a in ("ACC-1", "ACC-2") for t in ("phone", "email")}


def test_an_update_diffed_against_a_profile_replaced_meanwhile_claims_nothing(
    cassandra: Session, api_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two updates may carry the same changed_at: a claim conditioned on updated_at alone would let
    one diffed against a profile replaced meanwhile apply, and lose the change in between."""
    keyspace = api_config.cassandra.keyspace
    store = ProfileStore(cassandra, keyspace, timedelta(seconds=10))
    store.set_profile(parse(ALICE), LAST_WEEK)
    stale = store.read("CUST-ALICE")
    # B changes the email, at the stored profile's own time: updated_at stays LAST_WEEK.
    assert store.set_profile(parse(edited(email="b@example.com")), LAST_WEEK).outcome is ProfileOutcome.CHANGED
    # A read the profile before B's update, and changes the phone (its email is the first one).
    reads = iter([stale])
    real_read = store.read
    monkeypatch.setattr(store, "read", lambda customer: next(reads, None) or real_read(customer))
    later = LAST_WEEK + timedelta(hours=1)
    update = store.set_profile(parse(edited(phone="+1 650 253 0000")), later)
    # A's claim against the old version fails; it diffs against B's profile: the email went back too.
    assert sorted({change.change_type for change in update.changes}) == ["email", "phone"]
    email_changes = cassandra.execute(f"SELECT last_updated FROM {keyspace}.cust_change WHERE account_no = 'ACC-1'")
    assert sorted(row.last_updated.replace(tzinfo=UTC) for row in email_changes) == [LAST_WEEK, later, later]


def test_a_profile_write_cassandra_did_not_acknowledge_is_a_503_safe_to_resend(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed_out(self: ProfileStore, profile: CustomerProfile, changed_at: datetime | None = None) -> None:
        raise WriteTimeout("the claim's Paxos round timed out", write_type=WriteType.CAS)

    monkeypatch.setattr(ProfileStore, "set_profile", timed_out)
    response = put(client, ALICE)
    assert response.status_code == 503, response.text
    assert "sending the same profile again is safe" in response.json()["detail"]
    assert response.headers["Retry-After"]


def test_a_blank_customer_id_in_the_path_is_refused_naming_it(client: TestClient) -> None:
    response = put(client, ALICE, customer="%20")
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["path", "customer_id"]]


def test_profile_set_on_the_command_line(
    cassandra: Session, api_config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    keyspace = api_config.cassandra.keyspace
    common = ["--set", f"cassandra.keyspace={keyspace}", "--customer", "CUST-BOB", "--account", "ACC-9"]
    address = ["--address-line", "1 Quay St", "--city", "Bristol", "--postcode", "BS1 4DJ", "--country", "GB"]
    stack = [argument for setting in TEST_STACK_SETTINGS for argument in ("--set", setting)]

    def run(*arguments: str) -> int:
        return fraudshop_main(["profile", *arguments, *stack, *common])

    assert run("set", "--email", "bob@example.com", "--phone", "+44 117 496 0123", *address) == 0
    assert "baseline" in capsys.readouterr().out
    assert run("set", "--email", "bob@example.com", "--phone", "0117 496 0123", *address) == 0
    assert "unchanged" in capsys.readouterr().out
    assert run("set", "--email", "bob@example.com", "--phone", "+44 117 496 0999", *address) == 0
    assert "recorded 1 change(s)" in capsys.readouterr().out
    assert recorded(cassandra, keyspace) == {("ACC-9", "phone")}
    assert run("set", "--email", "bob@", "--phone", "+44 117 496 0123", *address) == 2
    assert "email:" in capsys.readouterr().err
    assert recorded(cassandra, keyspace) == {("ACC-9", "phone")}
    assert run("show") == 0
    assert "+441174960999" in capsys.readouterr().out
    # A time too far ahead would lock the profile against every real update until then.
    assert run("set", "--email", "bob2@example.com", "--phone", "+44 117 496 0999", *address, "--at", "2099-01-01") == 2
    assert "--at: changed_at 2099-01-01T00:00:00+00:00 is in the future" in capsys.readouterr().err
    assert recorded(cassandra, keyspace) == {("ACC-9", "phone")}
    with pytest.raises(SystemExit):  # argparse names the option and exits 2
        run("set", "--at", "yesterday")
    assert "--at: invalid iso_time value: 'yesterday'" in capsys.readouterr().err
    assert fraudshop_main(["profile", "sweep", *stack, "--set", f"cassandra.keyspace={keyspace}"]) == 0
    assert "completed 0 pending profile update(s)" in capsys.readouterr().out
