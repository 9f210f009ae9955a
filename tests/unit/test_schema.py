"""The CQL file splits into the statements fraudshop applies; every table the job writes exists."""

from __future__ import annotations

import re

from fraudshop.io.cassandra.schema import schema_statements
from fraudshop.model.tables import TABLES, schema_cql


def test_schema_file_has_one_create_per_table() -> None:
    statements = schema_statements(schema_cql())
    # Statements other than CREATE TABLE (ALTER TABLE … ADD IF NOT EXISTS) migrate older tables.
    tables = [created.group(1) for s in statements if (created := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))]
    assert tables == list(TABLES), "bank.cql creates the model's tables, once each, in the model's order"
    assert all("--" not in s and not s.endswith(";") for s in statements)
