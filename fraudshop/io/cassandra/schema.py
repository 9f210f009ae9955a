"""Create the keyspace and the tables of schemas/bank.cql."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from cassandra.cluster import Session

from fraudshop.config import CassandraConfig
from fraudshop.model.tables import TABLES, schema_cql

log = logging.getLogger(__name__)

_KEYSPACE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


def key_condition(columns: tuple[str, ...]) -> str:
    """``a = ? AND b = ?``: a WHERE clause binding ``columns`` (a key, or its prefix)."""
    return " AND ".join(f"{column} = ?" for column in columns)


def insert_statement(keyspace: str, table: str, columns: tuple[str, ...]) -> str:
    """An INSERT of ``columns`` into ``keyspace.table``, one bind marker per column."""
    return f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def schema_statements(cql: str) -> list[str]:
    """Split a CQL file into statements: comments dropped, one statement per ``;`` at a line end."""
    lines = [line for line in cql.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in re.split(r";\s*$", "\n".join(lines), flags=re.M) if statement.strip()]


def apply_schema(session: Session, cassandra: CassandraConfig) -> None:
    """Create the keyspace if needed and every table of the schema file in it (idempotent)."""
    if not _KEYSPACE_NAME.match(cassandra.keyspace):
        raise ValueError(f"keyspace name {cassandra.keyspace!r} is not a valid unquoted CQL identifier")
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {cassandra.keyspace} WITH replication = {cassandra.replication}")
    session.set_keyspace(cassandra.keyspace)
    for statement in schema_statements(schema_cql()):
        session.execute(statement)
    log.info("schema applied to keyspace %s", cassandra.keyspace)


def stored_columns(session: Session, keyspace: str) -> dict[str, set[str]]:
    """Each table of ``keyspace`` and its columns, as Cassandra has them now."""
    rows = session.execute(
        "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = %s", (keyspace,)
    )
    tables: dict[str, set[str]] = {}
    for row in rows:
        tables.setdefault(row.table_name, set()).add(row.column_name)
    return tables


#: An index of the schema file: its name, its table and the column it indexes.
_CREATE_INDEX = re.compile(r"^CREATE (?:CUSTOM )?INDEX IF NOT EXISTS (\w+) ON (\w+) \((\w+)\)", re.M)


def schema_indexes() -> dict[tuple[str, str], str]:
    """Each index the schema file creates: (its table, the column it indexes) -> its name."""
    return {
        (table, column): name
        for name, table, column in _CREATE_INDEX.findall("\n".join(schema_statements(schema_cql())))
    }


def stored_indexes(session: Session, keyspace: str) -> set[tuple[str, str]]:
    """The (table, column) of each index of ``keyspace``, as Cassandra has them now, whatever their names (an
    index of the same column under another name serves as well, and ``CREATE INDEX IF NOT EXISTS`` adds none)."""
    rows = session.execute(
        "SELECT table_name, options FROM system_schema.indexes WHERE keyspace_name = %s", (keyspace,)
    )
    return {(row.table_name, row.options.get("target", "")) for row in rows}


def schema_lacks(stored: Mapping[str, set[str]], indexes: set[tuple[str, str]] | None = None) -> list[str]:
    """What a keyspace holding ``stored`` (:func:`stored_columns`) and ``indexes`` (:func:`stored_indexes`,
    unchecked when None) lacks of fraudshop's schema: each table missing, a table's missing columns, each index
    missing (an older schema: ``fraudshop schema apply`` adds them)."""
    lacking = []
    for table, columns in TABLES.items():
        if table not in stored:
            lacking.append(f"table {table}")
        elif missing := [column for column in columns if column not in stored[table]]:
            lacking.append(f"{table}'s columns {', '.join(missing)}")
    if indexes is not None:
        lacking += [
            f"index {name} on {table} ({column})"
            for (table, column), name in schema_indexes().items()
            if (table, column) not in indexes
        ]
    return lacking


def older_schema(session: Session, keyspace: str, starting: str) -> str | None:
    """Why ``starting`` (the job, the API) must not start on ``keyspace``: what it lacks of this version's
    tables, columns and indexes, and how to add them; None when it lacks nothing."""
    if lacking := schema_lacks(stored_columns(session, keyspace), stored_indexes(session, keyspace)):
        return (
            f"keyspace {keyspace} lacks {'; '.join(lacking)}: run `fraudshop schema apply` (idempotent) with this "
            f"version, then start {starting}"
        )
    return None
