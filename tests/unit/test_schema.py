"""The CQL file splits into the statements fraudshop applies; every table the job writes exists."""

from __future__ import annotations

import re

from fraudshop.schema import SCHEMA_FILE, schema_statements


def test_schema_file_has_one_create_per_table() -> None:
    statements = schema_statements(SCHEMA_FILE.read_text())
    tables = [re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", s).group(1) for s in statements]  # type: ignore[union-attr]
    assert tables == [
        "transaction",
        "cust_change",
        "cust_change_by_customer",
        "cust_change_log",
        "job_progress",
        "cust_fraud",
        "cust_fraud_by_day",
        "transaction_rejects",
    ]
    assert all("--" not in s and not s.endswith(";") for s in statements)
