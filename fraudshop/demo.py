"""The live demo: the proofshop story on the local stack, printed as it happens.

Transactions stream in for a few dozen accounts; three customers change their profile one after
the other; each change's transactions start appearing in cust_fraud on the next micro-batch,
because the job re-reads cust_change on every batch.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cassandra.cluster import Session

from fraudshop.api_client import ApiClient, start_api
from fraudshop.cassandra_client import cassandra_session
from fraudshop.config import Config
from fraudshop.job_launcher import start_job, stop_job
from fraudshop.producer import account_number, ensure_topic, send_transactions, synthetic_transactions
from fraudshop.schema import apply_schema
from fraudshop.stack import stack_up

log = logging.getLogger(__name__)

#: (account index, customer, change type) of the three profile changes the demo records.
DEMO_CHANGES = ((3, "CUST-ALICE", "email"), (11, "CUST-BOB", "phone"), (27, "CUST-CAROL", "address"))


def transaction_count(session: Session, keyspace: str, accounts: int) -> int:
    """Stored transactions of the demo's accounts (one partition count each)."""
    statement = session.prepare(f"SELECT count(*) FROM {keyspace}.transaction WHERE account_no = ?")
    return sum(session.execute(statement, (account_number(i),)).one()[0] for i in range(accounts))


def _print_new_alerts(session: Session, keyspace: str, since: datetime, seen: set[tuple[datetime, str]]) -> None:
    """Print alerts not printed yet that name a change made since ``since`` (this run's changes:
    earlier runs' changes are still inside their 24 h window, and would muddle the story)."""
    day = datetime.now(UTC).date()
    rows = session.execute(
        f"SELECT tranpostdt, tranid, customer_id, account_no, amount, change_type, last_updated "
        f"FROM {keyspace}.cust_fraud_by_day WHERE day = %s",
        (day,),
    )
    for row in sorted(rows, key=lambda r: r.tranpostdt):
        if (row.tranpostdt, row.tranid) in seen:
            continue
        if row.last_updated.replace(tzinfo=UTC) < since:
            continue
        seen.add((row.tranpostdt, row.tranid))
        print(
            f"  ALERT {row.tranpostdt:%H:%M:%S.%f}"[:-3]
            + f"  {row.customer_id:<11} {row.account_no}  {row.amount:>9.2f}"
            f"  {row.change_type} change at {row.last_updated:%H:%M:%S}",
            flush=True,
        )


def run_demo(config: Config, duration: timedelta, rate: float, accounts: int) -> None:
    keyspace = config.cassandra.keyspace
    # The demo's API gets a fresh token: protected as in production, nothing to configure.
    config = replace(config, api=replace(config.api, token=config.api.token or secrets.token_urlsafe(16)))
    print("== 1. Local stack: a Kafka broker and a Cassandra node on 127.0.0.1", flush=True)
    stack_up(config)
    logs = config.stack.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    token_file = logs / "demo-api-token"
    token_file.touch(mode=0o600)
    token_file.write_text(config.api.token + "\n")
    with ExitStack() as cleanup, cassandra_session(config.cassandra) as session:
        apply_schema(session, config.cassandra)
        ensure_topic(config.kafka)
        stored_before = transaction_count(session, keyspace, accounts)
        with open(logs / "demo-api.log", "ab") as output:
            api_process = start_api(config, output)
        cleanup.callback(api_process.wait, timeout=30)
        cleanup.callback(api_process.terminate)
        api = ApiClient(f"http://{config.api.host}:{config.api.port}", config.api.token)
        print(f"== 2. Profile-change API on {api.base_url} (docs at /docs; bearer token in {token_file})")
        job_log = logs / "demo-job.log"
        print(f"   Starting the streaming job (spark-submit; its log: {job_log})", flush=True)
        with open(job_log, "ab") as output:
            job = start_job(config, output)
        cleanup.callback(stop_job, job)
        stop_producing = threading.Event()
        cleanup.callback(stop_producing.set)

        print(f"== 3. Producing {rate:.0f} transactions/s over {accounts} accounts to topic {config.kafka.topic}")
        logging.getLogger("fraudshop.producer").setLevel(logging.WARNING)  # the alerts are the show
        threading.Thread(
            target=send_transactions,
            args=(config.kafka, synthetic_transactions(accounts, seed=int(time.time())), rate),
            kwargs={"duration": duration + timedelta(minutes=5), "stop": stop_producing},
            daemon=True,
        ).start()
        _wait_for_new_transactions(session, keyspace, accounts, stored_before, job, job_log)
        print("== 4. Transactions are landing in bank.transaction. Now customers change their profiles:", flush=True)
        seen: set[tuple[datetime, str]] = set()
        story_started = datetime.now(UTC) - timedelta(seconds=1)
        start = time.monotonic()
        pending = list(DEMO_CHANGES)
        next_change = start
        while time.monotonic() - start < duration.total_seconds():
            if pending and time.monotonic() >= next_change:
                index, customer, change_type = pending.pop(0)
                api.record_change(account_number(index), customer, change_type)
                print(f"  CHANGE {customer} changed {change_type} on {account_number(index)} (POST /changes)")
                next_change += duration.total_seconds() / (len(DEMO_CHANGES) + 1)
            _print_new_alerts(session, keyspace, story_started, seen)
            if job.poll() is not None:
                raise RuntimeError(f"the job stopped (exit {job.returncode}); see {job_log}")
            time.sleep(1)
        print(f"== 5. {len(seen)} flagged transactions. One customer's: fraudshop alerts --customer CUST-ALICE")
    print("The local stack is still running for your queries; stop it with: fraudshop stack down")


def _wait_for_new_transactions(
    session: Session,
    keyspace: str,
    accounts: int,
    stored_before: int,
    job: subprocess.Popen[bytes],
    job_log: Path,
    timeout: float = 300,
) -> None:
    """Wait until the job stored transactions of this run (earlier runs' rows do not count)."""
    deadline = time.monotonic() + timeout
    while transaction_count(session, keyspace, accounts) <= stored_before:
        if job.poll() is not None:
            raise RuntimeError(f"the job stopped (exit {job.returncode}); see {job_log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no transaction reached Cassandra within {timeout:.0f} s")
        time.sleep(2)
