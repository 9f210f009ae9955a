"""`fraudshop schema apply` on a keyspace created by an earlier release: the columns added since
(the transaction's merchant fields and its similarity score) are added to its tables, and applying
again changes nothing. The job refuses to start on such a keyspace before it is applied, naming what
it lacks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cassandra.cluster import Session
from fastapi.testclient import TestClient

from fraudshop.config import Config, ConfigError
from fraudshop.io.cassandra.schema import (
    apply_schema,
    schema_lacks,
    schema_statements,
    stored_columns,
    stored_indexes,
)
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.jobs.detect_fraud import SCHEMA_LACKING_EXIT_CODE, refuse_an_older_schema
from fraudshop.model.records import MERCHANT_FIELDS
from fraudshop.model.tables import SCORE_COLUMNS, TABLES, schema_cql
from fraudshop.service.api import create_app

pytestmark = pytest.mark.integration


def transaction_table_before_merchant_fields() -> str:
    """bank.transaction's CREATE TABLE as the release before the merchant fields had it."""
    (create,) = [s for s in schema_statements(schema_cql()) if s.startswith("CREATE TABLE IF NOT EXISTS transaction ")]
    older = re.sub(rf"\n\s*(?:{'|'.join(MERCHANT_FIELDS)}) text,", "", create)
    older = re.sub(rf"\n\s*(?:{'|'.join(SCORE_COLUMNS)}) [^\n]*,", "", older)
    assert not any(name in older for name in (*MERCHANT_FIELDS, *SCORE_COLUMNS))
    return older


@pytest.fixture
def older_keyspace(isolated_config: Config) -> Iterator[Session]:
    """A session in a keyspace as the release before the merchant fields left it (its transaction table
    only), dropped afterwards."""
    keyspace = isolated_config.cassandra.keyspace
    with cassandra_session(isolated_config.cassandra) as session:
        try:
            session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = {isolated_config.cassandra.replication}")
            session.set_keyspace(keyspace)
            session.execute(transaction_table_before_merchant_fields())
            yield session
        finally:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


def test_schema_apply_adds_the_merchant_fields_to_an_existing_transaction_table(
    isolated_config: Config, older_keyspace: Session
) -> None:
    session, keyspace = older_keyspace, isolated_config.cassandra.keyspace
    posted = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    session.execute(
        "INSERT INTO transaction (account_no, tranpostdt, tranid, amount) VALUES (%s, %s, %s, %s)",
        ("ACC-OLD", posted, "T-old", 1.0),
    )

    apply_schema(session, isolated_config.cassandra)
    apply_schema(session, isolated_config.cassandra)  # idempotent: the columns are there now

    columns = {
        row.column_name
        for row in session.execute(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, "transaction"),
        )
    }
    assert columns == set(TABLES["transaction"])
    session.execute(
        "INSERT INTO transaction (account_no, tranpostdt, tranid, amount, merchant_id, merchant_category, "
        "channel) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        ("ACC-NEW", posted, "T-new", 2.0, "M0001", "5411", "pos"),
    )
    rows = {
        row.tranid: (row.merchant_id, row.merchant_category, row.channel)
        for row in session.execute("SELECT tranid, merchant_id, merchant_category, channel FROM transaction")
    }
    assert rows == {"T-old": (None, None, None), "T-new": ("M0001", "5411", "pos")}


def test_the_job_refuses_an_older_keyspace_until_the_schema_is_applied(
    isolated_config: Config, older_keyspace: Session, caplog: pytest.LogCaptureFixture
) -> None:
    session, keyspace = older_keyspace, isolated_config.cassandra.keyspace
    with pytest.raises(SystemExit) as refused:
        refuse_an_older_schema(isolated_config)
    assert refused.value.code == SCHEMA_LACKING_EXIT_CODE
    assert "transaction's columns merchant_id" in caplog.text and "table merchant_day_total" in caplog.text
    assert "run `fraudshop schema apply`" in caplog.text

    apply_schema(session, isolated_config.cassandra)
    assert schema_lacks(stored_columns(session, keyspace), stored_indexes(session, keyspace)) == []
    refuse_an_older_schema(isolated_config)  # returns: the job may start


def test_the_api_refuses_an_older_keyspace_until_the_schema_is_applied(
    isolated_config: Config, older_keyspace: Session
) -> None:
    served = isolated_config.with_settings("api.token=t")
    refused = pytest.raises(ConfigError, match=r"lacks .*table authorization.*run `fraudshop schema apply`")
    with refused, TestClient(create_app(served)):
        pass
    apply_schema(older_keyspace, isolated_config.cassandra)
    with TestClient(create_app(served)) as client:
        assert client.get("/health").status_code == 200
