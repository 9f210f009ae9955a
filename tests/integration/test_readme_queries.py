"""Every query the docs give (each ```sql block of docs/*.md: the queries fraud teams run are on
docs/queries.md, linked from the README) runs on the real schema, without ALLOW FILTERING
(Cassandra refuses a query that would need it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cassandra.cluster import Session

from fraudshop.config import Config

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_queries(page: str = "*.md") -> list[str]:
    pages = sorted(DOCS.glob(page))
    assert pages, f"no {page} in {DOCS}"
    blocks = [block for path in pages for block in re.findall(r"```sql\n(.*?)```", path.read_text(), flags=re.S)]
    text = "\n".join(line for block in blocks for line in block.splitlines() if not line.startswith("--"))
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def test_the_docs_have_queries_for_each_way_fraud_teams_read() -> None:
    tables = {re.search(r"FROM bank\.(\w+)", q).group(1) for q in documented_queries("queries.md")}  # type: ignore[union-attr]
    assert {"cust_fraud", "cust_fraud_by_day", "transaction", "cust_change", "transaction_rejects"} <= tables


def test_documented_queries_run_as_written(isolated_config: Config, cassandra: Session) -> None:
    for query in documented_queries():
        assert "ALLOW FILTERING" not in query.upper()
        cassandra.execute(query.replace("bank.", f"{isolated_config.cassandra.keyspace}."))
