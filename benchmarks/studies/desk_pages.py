"""How long the desk's pages take with a busy queue: ``--alerts`` alerts a day on each of the queue's days
(``desk.queue_days``, 7), every one a profile-change alert, every second one also a rule hit, every tenth a
similarity hit, and a tenth of them reviewed. Each page is asked ``--requests`` times in-process (FastAPI's
TestClient: routing, the reads, the templates; no network), signed in as an analyst; the first queue page is
timed apart (the merchants of the profile-change alerts are read then, and kept).

    .venv/bin/python benchmarks/studies/desk_pages.py > benchmarks/studies/desk_pages.txt

It starts the local stack if needed and works in a scratch keyspace, dropped afterwards.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from fastapi.testclient import TestClient

from fraudshop.config import load_config
from fraudshop.lab.scratch import scratch_space
from fraudshop.lab.stack import stack_up
from fraudshop.model.cases import SIMILARITY_KIND
from fraudshop.model.desk import TransactionKey
from fraudshop.service.api import create_app
from fraudshop.service.desk import alert_query

ANALYST = ("study", "desk-study-token-0001")


def seed(session: Session, keyspace: str, days: int, per_day: int) -> TransactionKey:
    """The alerts, their transactions, hits and reviews; returns one alert's key."""
    now = datetime.now(UTC).replace(microsecond=0)
    transactions: list[tuple[Any, ...]] = []
    flagged: list[tuple[Any, ...]] = []
    hits: list[tuple[Any, ...]] = []
    reviews: list[tuple[Any, ...]] = []
    for back in range(days):
        day_start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=back)
        for number in range(per_day):
            at = day_start + timedelta(seconds=number * 86_000 // per_day)
            account, tranid, customer = f"ACC{number % 997:07d}", f"T{back}-{number}", f"CUST-{number % 997}"
            transactions.append((account, at, tranid, 25.0 + number % 400, f"M-{number % 300}"))
            flagged.append((at.date(), at, tranid, customer, account, 25.0, "email", at - timedelta(hours=1), 1, at))
            if number % 2 == 0:
                kind = SIMILARITY_KIND if number % 10 == 0 else "amount_over"
                hits.append((customer, at, tranid, account, uuid.uuid4(), at.date(), kind, "evidence", at))
            if number % 10 == 5:
                reviews.append((at.date(), account, at, tranid, now, uuid.uuid4(), "dismiss", ANALYST[0], [kind]))
    statements: dict[str, list[tuple[Any, ...]]] = {
        "transaction (account_no, tranpostdt, tranid, amount, merchant_id)": transactions,
        "cust_fraud_by_day (day, tranpostdt, tranid, customer_id, account_no, amount, change_type, last_updated, "
        "qualifying_changes, detected_at)": flagged,
        "rule_hit (customer_id, tranpostdt, tranid, account_no, rule_id, day, kind, reason, detected_at)": hits,
        "alert_review (day, account_no, tranpostdt, tranid, reviewed_at, review_id, action, analyst, signals)": reviews,
    }
    for table, rows in statements.items():
        marks = ", ".join("?" * len(rows[0]))
        insert = session.prepare(f"INSERT INTO {keyspace}.{table} VALUES ({marks})")
        for success, result in execute_concurrent_with_args(session, insert, rows, concurrency=64):
            if not success:
                raise result
    account, at, tranid, _, _ = transactions[0]
    return TransactionKey.of(account, at, tranid)


def timed(client: TestClient, path: str, times: int) -> list[float]:
    taken = []
    for _ in range(times):
        started = time.perf_counter()
        reply = client.get(path)
        taken.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, (path, reply.status_code, reply.text[:300])
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--requests", type=int, default=10)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config().with_settings(f"desk.users={ANALYST[0]}:analyst:{ANALYST[1]}", "api.require_token=false")
    stack_up(config)
    print(f"desk pages, {config.desk.queue_days} days in the queue, {arguments.requests} requests each (ms)")
    print(f"{'alerts/day':>10} {'page':<34} {'median':>8} {'p95':>8} {'max':>8}")
    for per_day in arguments.alerts:
        with (
            tempfile.TemporaryDirectory() as work,
            scratch_space(config, "desk_pages", Path(work)) as (scratch, session),
        ):
            key = seed(session, scratch.cassandra.keyspace, config.desk.queue_days, per_day)
            with TestClient(create_app(scratch)) as client:
                login = client.get("/desk/login").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
                assert csrf is not None
                client.post(
                    "/desk/login", data={"analyst": ANALYST[0], "token": ANALYST[1], "csrf_token": csrf.group(1)}
                )
                pages = {
                    "queue, first (merchants read)": ("/desk", 1),
                    "queue": ("/desk", arguments.requests),
                    "queue rows (the live refresh)": ("/desk/queue/rows", arguments.requests),
                    "queue, one day, one signal": (
                        f"/desk?day={key.day.isoformat()}&signal={SIMILARITY_KIND}",
                        arguments.requests,
                    ),
                    "an alert": (f"/desk/alert?{alert_query(key)}", arguments.requests),
                    "overview": ("/desk/overview", arguments.requests),
                    "overview chart": ("/desk/overview/alerts-per-hour.svg", arguments.requests),
                }
                for name, (path, times) in pages.items():
                    taken = sorted(timed(client, path, times))
                    p95 = taken[min(len(taken) - 1, round(0.95 * (len(taken) - 1)))]
                    print(f"{per_day:>10} {name:<34} {statistics.median(taken):>8.0f} {p95:>8.0f} {taken[-1]:>8.0f}")


if __name__ == "__main__":
    main()
