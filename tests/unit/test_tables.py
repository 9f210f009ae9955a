"""Every column tuple of fraudshop.model.tables matches bank.cql: the code's one source of each
table's columns and keys cannot drift from the schema that `fraudshop schema apply` creates."""

from __future__ import annotations

import re

import pytest

from fraudshop.io.cassandra.schema import schema_statements
from fraudshop.model.features import VECTOR_DIMENSIONS
from fraudshop.model.tables import PRIMARY_KEYS, TABLES, schema_cql

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(\n(.*?)\n\)", re.S)
_PRIMARY_KEY = re.compile(r"PRIMARY KEY \((.*)\)$", re.S)


def _cql_tables() -> dict[str, tuple[list[str], list[str]]]:
    """table → (columns in file order, primary key columns, partition key first)."""
    tables = {}
    for statement in schema_statements(schema_cql()):
        create = _CREATE.match(statement)
        if create is None:
            continue
        name, body = create.groups()
        columns: list[str] = []
        key: list[str] = []
        for line in (part.strip() for part in body.strip().splitlines()):
            line = line.rstrip(",")
            if not line:
                continue
            primary = _PRIMARY_KEY.match(line)
            if primary:
                key = [column.strip("() ") for column in primary.group(1).split(",")]
                continue
            column, _type, *rest = line.split()
            columns.append(column)
            if rest == ["PRIMARY", "KEY"]:
                key = [column]
        tables[name] = (columns, key)
    return tables


CQL_TABLES = _cql_tables()


def test_every_table_of_the_schema_is_described_in_the_model() -> None:
    assert set(CQL_TABLES) == set(TABLES) == set(PRIMARY_KEYS)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_models_columns_are_the_tables_columns(table: str) -> None:
    columns, _ = CQL_TABLES[table]
    assert len(set(TABLES[table])) == len(TABLES[table]), "a column named twice"
    assert set(TABLES[table]) == set(columns)


@pytest.mark.parametrize("table", sorted(PRIMARY_KEYS))
def test_the_models_key_is_the_tables_primary_key_in_order(table: str) -> None:
    _, key = CQL_TABLES[table]
    assert PRIMARY_KEYS[table] == tuple(key)


def test_the_case_vectors_dimension_is_the_feature_vectors() -> None:
    dimensions = set(re.findall(r"vector<float, (\d+)>", schema_cql()))
    assert dimensions == {str(VECTOR_DIMENSIONS)}
