"""notebooks/fraudshop_demo.ipynb runs top to bottom, headless, on the real local stack: the profile
edits that are changes are recorded and every alert it shows is really in cust_fraud, inside the 24 h
after that customer's profile change; the edit that is no change records and flags nothing. In the
rules chapter, Dave's cap asks him to confirm the purchase that takes his month over £20, the coffee
shop's staff confirm the £65 sale, and each hit was announced on the notifications topic as it came. In
the similarity chapter, the card-testing burst on Erin's card becomes similar_to_fraud hits, each
announced, and none of her ordinary month does. In the authorization chapter, the analyst confirms the
burst, the risk model trained on it blocks the next card test through POST /authorize, and the
decision is recorded with its reasons."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from cassandra.cluster import Session
from nbclient import NotebookClient

from fraudshop.config import Config, as_environment
from fraudshop.lab.story import (
    DEMO_ANALYST,
    DEMO_UPDATES,
    NOTIFIED_LINE,
    RULES_CUSTOMER_ID,
    TESTED_ACCOUNT,
    TESTED_CUSTOMER_ID,
    log_dir,
    rules_customer_account,
)
from fraudshop.lab.workload import APP_STORE_ID, COFFEE_SHOP_ID
from fraudshop.model.cases import SIMILARITY_KIND

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "fraudshop_demo.ipynb"
SHOWN = re.compile(r"^SHOWN (\S+) (\S+) (\S+) (\S+)$", re.M)


def tagged(notebook: Any, tag: str) -> Any:
    (cell,) = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    return cell


def stdout_of(cell: Any) -> str:
    return "".join(output.text for output in cell.outputs if output.output_type == "stream" and output.name == "stdout")


def text_of(cell: Any) -> str:
    """All the cell showed as text: its prints and the plain text of its displays (rich's tables)."""
    return "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in cell.outputs)


def run_notebook(config: Config, token: str) -> Any:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    # The notebook reads all its settings from the environment: the test stack, this test's own
    # keyspace, topic and checkpoint, and the API's port and token.
    environment = {**os.environ, **as_environment(config), "FRAUDSHOP_API__TOKEN": token}
    client = NotebookClient(
        notebook,
        kernel_name="python3",  # the ipykernel of this interpreter's environment
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=environment)
    return notebook


def test_the_notebook_tells_the_story_and_its_alerts_are_real(isolated_config: Config, cassandra: Session) -> None:
    token = secrets.token_urlsafe(16)
    notebook = run_notebook(isolated_config, token)
    keyspace = isolated_config.cassandra.keyspace

    outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    assert token not in outputs, "the notebook showed the API token"
    desk_token = (log_dir(isolated_config) / "demo-desk-token").read_text().strip()
    assert len(desk_token) >= 16 and desk_token not in outputs, "the notebook showed the desk's token"
    assert any("image/png" in output.get("data", {}) for output in tagged(notebook, "alerts-plot").outputs)

    shown = SHOWN.findall(stdout_of(tagged(notebook, "teardown")))
    alice, bob, carol = (demo.customer_id for demo in DEMO_UPDATES)
    customers = {alice, carol}  # Bob's phone was re-entered in another format: no change
    assert {customer for customer, *_ in shown} == customers, f"not every changed customer had an alert: {shown}"
    accounts = {demo.customer_id: demo.account_no for demo in DEMO_UPDATES}

    # Every customer's profile is stored; Bob's still has his phone as first sent, in E.164.
    stored = {row.customer_id: row for row in cassandra.execute(f"SELECT * FROM {keyspace}.customer")}
    assert set(stored) == {alice, bob, carol, RULES_CUSTOMER_ID}
    assert (stored[bob].phone, stored[alice].email, stored[carol].address_city) == (
        "+442079460202",
        "alice.w@example.net",
        "Manchester",
    )
    for table in ("cust_change_by_customer", "cust_fraud"):
        rows = cassandra.execute(f"SELECT * FROM {keyspace}.{table} WHERE customer_id = %s", (bob,))
        assert not list(rows), f"Bob's formatting edit left rows in {table}"

    # The notebook's edits recorded one change per changed customer, on that customer's account.
    changes = {
        customer: [
            (row.account_no, row.last_updated)
            for row in cassandra.execute(
                f"SELECT account_no, last_updated FROM {keyspace}.cust_change_by_customer WHERE customer_id = %s",
                (customer,),
            )
        ]
        for customer in customers
    }
    assert {customer: [account for account, _ in rows] for customer, rows in changes.items()} == {
        customer: [accounts[customer]] for customer in customers
    }
    change_types = {
        row.customer_id: row.change_type for row in cassandra.execute(f"SELECT * FROM {keyspace}.cust_change")
    }
    assert change_types == {alice: "email", carol: "address"}
    window = timedelta(hours=isolated_config.job.change_window_hours)
    for customer, account_no, tranid, iso_time in shown:
        assert account_no == accounts[customer]
        tranpostdt = datetime.fromisoformat(iso_time)
        row = cassandra.execute(
            f"SELECT account_no, tranpostdt FROM {keyspace}.cust_fraud "
            "WHERE customer_id = %s AND tranpostdt = %s AND tranid = %s",
            (customer, tranpostdt, tranid),
        ).one()
        assert row is not None, f"shown alert {customer} {tranid} {iso_time} is not in cust_fraud"
        assert row.account_no == account_no
        ((_, changed_at),) = changes[customer]  # the driver returns naive UTC times, as row.tranpostdt
        assert changed_at <= row.tranpostdt < changed_at + window, (customer, tranid, row.tranpostdt, changed_at)

    # The rules chapter: Dave's account is outside the producer's range, so its only transactions are
    # the notebook's three purchases and its hits are exactly these two.
    purchases = {
        row.amount: row
        for row in cassandra.execute(
            f"SELECT * FROM {keyspace}.transaction WHERE account_no = %s", (rules_customer_account(),)
        )
    }
    assert sorted(purchases) == [9.99, 12.0, 65.0]
    hits = list(cassandra.execute(f"SELECT * FROM {keyspace}.rule_hit WHERE customer_id = %s", (RULES_CUSTOMER_ID,)))
    assert sorted(
        (hit.kind, hit.action, hit.merchant_id, hit.tranid, hit.amount, hit.evidence_value, hit.evidence_limit)
        for hit in hits
    ) == [
        ("merchant_amount_over", "confirm_staff", COFFEE_SHOP_ID, purchases[65.0].tranid, 65.0, 65.0, 50.0),
        ("merchant_monthly_cap", "confirm_customer", APP_STORE_ID, purchases[9.99].tranid, 9.99, 21.99, 20.0),
    ]
    (staff_hit,) = [hit for hit in hits if hit.kind == "merchant_amount_over"]
    coffee_day = list(
        cassandra.execute(
            f"SELECT * FROM {keyspace}.rule_hit_by_merchant_day WHERE merchant_id = %s AND day = %s",
            (COFFEE_SHOP_ID, staff_hit.tranpostdt.date()),
        )
    )
    # (The background traffic's last transactions, scored against the chapter after's cases, may be similar.)
    assert [(hit.tranid, hit.action, hit.customer_id) for hit in coffee_day if hit.kind != SIMILARITY_KIND] == [
        (staff_hit.tranid, "confirm_staff", RULES_CUSTOMER_ID)
    ]

    # Each hit was announced, once, and printed as it came; the API's tables showed both.
    notified = NOTIFIED_LINE.findall(stdout_of(tagged(notebook, "notifications")))
    assert sorted(
        (action, kind, customer, merchant, float(amount), tranid)
        for _, _, action, kind, customer, merchant, amount, tranid, _ in notified
    ) == sorted((hit.action, hit.kind, RULES_CUSTOMER_ID, hit.merchant_id, hit.amount, hit.tranid) for hit in hits)
    shown_hits = text_of(tagged(notebook, "rule-hits"))
    assert all(hit.tranid in shown_hits for hit in hits), shown_hits
    assert purchases[12.0].tranid not in shown_hits

    # The similarity chapter: hits on the burst only (its payments are 0.50 to 2.00 at one merchant new
    # to Erin), each announced once, as printed.
    erins = list(cassandra.execute(f"SELECT * FROM {keyspace}.rule_hit WHERE customer_id = %s", (TESTED_CUSTOMER_ID,)))
    assert erins and {hit.kind for hit in erins} == {SIMILARITY_KIND}
    assert {hit.account_no for hit in erins} == {TESTED_ACCOUNT}
    assert all(hit.amount <= 2.0 and hit.evidence_value >= hit.evidence_limit for hit in erins)
    assert len({hit.merchant_id for hit in erins}) == 1
    similar = NOTIFIED_LINE.findall(stdout_of(tagged(notebook, "similarity-notifications")))
    assert sorted((kind, customer, tranid) for _, _, _, kind, customer, _, _, tranid, _ in similar) == sorted(
        (SIMILARITY_KIND, TESTED_CUSTOMER_ID, hit.tranid) for hit in erins
    )
    assert "True" in text_of(tagged(notebook, "burst-scores"))

    # The authorization chapter: the burst's alerts confirmed by the analyst at the desk, a model trained on
    # them, and the next card test blocked by that model before it posts, its decision recorded with its reasons.
    confirmed = [
        row
        for row in cassandra.execute(f"SELECT source, account_no, tranid, amount, label FROM {keyspace}.fraud_case")
        if row.source == "analyst"
    ]
    assert confirmed and {(row.account_no, row.label) for row in confirmed} == {(TESTED_ACCOUNT, "fraud")}
    assert all(row.amount <= 2.0 for row in confirmed)  # the burst's payments, 0.50 to 2.00
    (model,) = list(cassandra.execute(f"SELECT model_version, training_frauds FROM {keyspace}.risk_model"))
    assert model.training_frauds == len(confirmed)
    # Each confirmed at the desk, by the demo's analyst, over HTTP: every case has its review.
    reviews = list(cassandra.execute(f"SELECT tranid, action, analyst, signals FROM {keyspace}.alert_review"))
    assert {row.tranid for row in reviews} == {row.tranid for row in confirmed}
    assert all(row.action == "confirm" and row.analyst == DEMO_ANALYST for row in reviews)
    assert all(SIMILARITY_KIND in row.signals for row in reviews)
    assert "/desk" in stdout_of(tagged(notebook, "authorize"))
    decisions = list(
        cassandra.execute(f"SELECT * FROM {keyspace}.authorization WHERE account_no = %s", (TESTED_ACCOUNT,))
    )
    blocked = [row for row in decisions if row.model_version == model.model_version]
    assert blocked and all(row.decision == "block" for row in blocked), decisions
    assert all(row.fraud_probability >= isolated_config.authorize.block_probability for row in blocked)
    assert "risk_model" in blocked[-1].reason_signals
    assert "BLOCK" in stdout_of(tagged(notebook, "authorize"))
    assert "fraud_probability" in text_of(tagged(notebook, "authorize"))
