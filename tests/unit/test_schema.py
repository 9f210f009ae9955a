"""The CQL file splits into the statements fraudshop applies; every table the job writes exists; an older
keyspace's lacks are named."""

from __future__ import annotations

import re

from fraudshop.io.cassandra.schema import schema_indexes, schema_lacks, schema_statements
from fraudshop.model.tables import TABLES, schema_cql


def test_schema_file_has_one_create_per_table() -> None:
    statements = schema_statements(schema_cql())
    # Statements other than CREATE TABLE (ALTER TABLE … ADD IF NOT EXISTS) migrate older tables.
    tables = [created.group(1) for s in statements if (created := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))]
    assert tables == list(TABLES), "bank.cql creates the model's tables, once each, in the model's order"
    assert all("--" not in s and not s.endswith(";") for s in statements)


def test_an_older_keyspace_is_told_what_it_lacks_and_a_current_one_nothing() -> None:
    current = {table: set(columns) for table, columns in TABLES.items()}
    assert schema_lacks(current) == []
    older = {table: set(columns) for table, columns in current.items() if table != "merchant_day_total"}
    older["transaction"] -= {"risk_features", "fraud_probability"}
    assert schema_lacks(older) == [
        "transaction's columns risk_features, fraud_probability",
        "table merchant_day_total",
    ]


def test_an_index_missing_is_named_with_its_table_and_column() -> None:
    current = {table: set(columns) for table, columns in TABLES.items()}
    indexes = schema_indexes()
    created = [s for s in schema_statements(schema_cql()) if re.match(r"CREATE (CUSTOM )?INDEX", s)]
    assert len(indexes) == len(created) >= 4, "every index statement is found"
    assert indexes[("rule_hit", "day")] == "rule_hit_day"
    assert schema_lacks(current, set(indexes)) == []
    assert schema_lacks(current, set(indexes) - {("rule_hit", "day")}) == ["index rule_hit_day on rule_hit (day)"]
