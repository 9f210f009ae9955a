"""Helpers of ``notebooks/fraudshop_demo.ipynb``: the proofshop story told step by step.

The notebook calls the project's own functions (``stack_up``, ``start_api``, ``start_job``, ...);
what lives here is only what keeps its cells short: waiting (bounded) for the stream to show
something, turning API answers into tables and a plot, and stopping everything it started, also
when a cell fails halfway (:class:`Running` stops at interpreter exit too).
"""

from __future__ import annotations

import atexit
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fraudshop.api_client import ApiClient
from fraudshop.cassandra_client import cassandra_session
from fraudshop.cli import format_table
from fraudshop.config import CassandraConfig, Config, KafkaConfig
from fraudshop.demo import transaction_count
from fraudshop.job_launcher import stop_job
from fraudshop.producer import account_number, send_transactions, synthetic_transactions

#: The producer stops by itself after this long, should the notebook be left running.
PRODUCER_SAFETY_LIMIT = timedelta(minutes=30)
ALERT_COLUMNS = ("tranpostdt", "account_no", "tranid", "amount", "change_type", "last_updated", "detected_at")


def _utc(text: str) -> datetime:
    """An ISO-8601 time from the API ("Z" or an offset) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class PostedChange:
    """A profile change as the API stored it."""

    customer_id: str
    account_no: str
    change_type: str
    #: When the profile changed: the start of its 24 h window.
    last_updated: datetime
    #: When the API wrote it; the job picks it up on its next micro-batch.
    recorded_at: datetime


@dataclass(frozen=True)
class Alert:
    """One row of ``cust_fraud`` as ``GET /customers/{id}/alerts`` returns it."""

    customer_id: str
    account_no: str
    tranid: str
    tranpostdt: datetime
    amount: float
    change_type: str
    last_updated: datetime
    detected_at: datetime | None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Alert:
        return cls(
            customer_id=item["customer_id"],
            account_no=item["account_no"],
            tranid=item["tranid"],
            tranpostdt=_utc(item["tranpostdt"]),
            amount=float(item["amount"]),
            change_type=item["change_type"],
            last_updated=_utc(item["last_updated"]),
            detected_at=_utc(item["detected_at"]) if item.get("detected_at") else None,
        )

    def shown_line(self) -> str:
        """The parseable line the notebook's last cell prints for each alert it showed."""
        return f"SHOWN {self.customer_id} {self.account_no} {self.tranid} {self.tranpostdt.isoformat()}"


@dataclass
class Running:
    """Everything the notebook starts. :meth:`stop` ends it all, in an order that signals every
    process before waiting for any; it also runs when the kernel exits, so a failed cell leaves
    nothing behind. The local stack is not ours to stop."""

    stop_producing: threading.Event = field(default_factory=threading.Event)
    producer: threading.Thread | None = None
    api: subprocess.Popen[bytes] | None = None
    job: subprocess.Popen[bytes] | None = None
    _resources: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    def cassandra(self, cassandra: CassandraConfig) -> Session:
        """A driver session, closed by :meth:`stop`."""
        session: Session = self._resources.enter_context(cassandra_session(cassandra))
        return session

    def check_job(self) -> None:
        if self.job is not None and self.job.poll() is not None:
            raise RuntimeError(f"the streaming job stopped (exit {self.job.returncode}); see its log")

    def stop(self) -> None:
        self.stop_producing.set()
        if self.api is not None and self.api.poll() is None:
            self.api.terminate()
        if self.job is not None:
            stop_job(self.job)
        if self.api is not None:
            try:
                self.api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait()
        if self.producer is not None:
            self.producer.join(timeout=30)
        self._resources.close()


def log_dir(config: Config) -> Path:
    """Where the notebook's API and job write their logs: beside the local stack's."""
    logs = config.stack.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def start_producer(kafka: KafkaConfig, accounts: int, rate: float, stop: threading.Event) -> threading.Thread:
    """Send synthetic transactions over ``accounts`` accounts at ``rate`` per second until ``stop``."""
    producer = threading.Thread(
        target=send_transactions,
        args=(kafka, synthetic_transactions(accounts, seed=int(time.time())), rate),
        kwargs={"duration": PRODUCER_SAFETY_LIMIT, "stop": stop},
        name="fraudshop-producer",
        daemon=True,
    )
    producer.start()
    return producer


def _wait_for(what: str, check: Callable[[], bool], running: Running, timeout: float, interval: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        running.check_job()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(interval)


def _recent_transactions(session: Session, keyspace: str, accounts: int, per_account: int) -> list[Any]:
    statement = session.prepare(
        f"SELECT tranpostdt, account_no, tranid, amount, merchant FROM {keyspace}.transaction "
        "WHERE account_no = ? LIMIT ?"
    )
    rows = [row for i in range(accounts) for row in session.execute(statement, (account_number(i), per_account))]
    return sorted(rows, key=lambda row: row.tranpostdt, reverse=True)


def watch_transactions(
    session: Session, keyspace: str, accounts: int, running: Running, seconds: float = 8, timeout: float = 300
) -> None:
    """Wait for the job's first micro-batch to store transactions, then print the stored count for
    a few seconds and the latest transactions."""
    started = time.monotonic()
    earlier = transaction_count(session, keyspace, accounts)  # those of an earlier run, if any
    _wait_for(
        "new transaction in Cassandra",
        lambda: transaction_count(session, keyspace, accounts) > earlier,
        running,
        timeout,
    )
    print(f"first transactions stored after {time.monotonic() - started:.0f} s")
    for _ in range(max(1, round(seconds / 2))):
        print(f"{_clock(datetime.now(UTC))}  {transaction_count(session, keyspace, accounts):6d} stored")
        time.sleep(2)
    columns = ("tranpostdt", "account_no", "tranid", "amount", "merchant")
    latest = _recent_transactions(session, keyspace, accounts, per_account=1)[:6]
    print("\nThe latest ones:\n" + format_table(columns, [[getattr(row, c) for c in columns] for row in latest]))


def post_change(api: ApiClient, account_index: int, customer_id: str, change_type: str) -> PostedChange:
    """``POST /changes`` for the account, changed now; prints what was recorded."""
    stored = api.record_change(account_number(account_index), customer_id, change_type)
    change = PostedChange(
        customer_id=stored["customer_id"],
        account_no=stored["account_no"],
        change_type=stored["change_type"],
        last_updated=_utc(stored["last_updated"]),
        recorded_at=_utc(stored["recorded_at"]),
    )
    print(
        f"POST /changes: {change.customer_id} changed {change.change_type} on {change.account_no} "
        f"at {_clock(change.last_updated)} UTC"
    )
    return change


def alerts_of(api: ApiClient, change: PostedChange) -> list[Alert]:
    """The alerts that name ``change`` (not those of an earlier run's change), oldest first."""
    found = (Alert.from_api(item) for item in api.alerts_of_customer(change.customer_id))
    return sorted((alert for alert in found if alert.last_updated == change.last_updated), key=lambda a: a.tranpostdt)


def wait_for_alerts(api: ApiClient, change: PostedChange, running: Running, timeout: float = 120) -> list[Alert]:
    """Poll the API until the change has flagged a transaction; return its alerts, oldest first."""
    _wait_for(f"alert for {change.customer_id}'s change", lambda: bool(alerts_of(api, change)), running, timeout)
    return alerts_of(api, change)


def alerts_table(alerts: Sequence[Alert]) -> str:
    return format_table(ALERT_COLUMNS, [[getattr(alert, c) for c in ALERT_COLUMNS] for alert in alerts])


def show_alerts(session: Session, keyspace: str, change: PostedChange, alerts: Sequence[Alert]) -> None:
    """How soon after the change its first alert was written, that none of the account's earlier
    transactions is flagged for it, and its alerts."""
    first = alerts[0]
    if first.detected_at is not None:
        delay = (first.detected_at - change.recorded_at).total_seconds()
        print(f"first alert written by the micro-batch at {_clock(first.detected_at)}, {delay:.1f} s after the change")
    before = session.execute(
        f"SELECT count(*) FROM {keyspace}.transaction WHERE account_no = %s AND tranpostdt < %s",
        (change.account_no, change.last_updated),
    ).one()[0]
    flagged_before = sum(alert.tranpostdt < change.last_updated for alert in alerts)
    print(f"{change.account_no} had {before} transactions before the change; {flagged_before} of them flagged for it\n")
    print(alerts_table(alerts))


def watch_alerts(api: ApiClient, changes: Sequence[PostedChange], running: Running, seconds: float = 15) -> None:
    """Print each customer's alert count every few seconds: the stream keeps flagging."""
    deadline = time.monotonic() + seconds
    while True:
        running.check_job()
        counts = "  ".join(f"{change.customer_id} {len(alerts_of(api, change)):4d}" for change in changes)
        print(f"{_clock(datetime.now(UTC))}  {counts}")
        if time.monotonic() >= deadline:
            return
        time.sleep(5)


def plot_alerts(alerts: Mapping[str, Sequence[Alert]], changes: Sequence[PostedChange]) -> Figure:
    """Cumulative alerts over time, one line per customer, a dashed line at each one's change."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots()
    for index, change in enumerate(changes):
        color = f"C{index}"
        times = [alert.tranpostdt for alert in alerts.get(change.customer_id, ())]
        label = f"{change.customer_id} ({change.change_type} change on {change.account_no})"
        # matplotlib converts datetimes at run time; its type stubs only admit numbers, hence Any.
        x: Any = [change.last_updated, *times]
        axes.step(x, range(len(x)), where="post", color=color, label=label)
        axes.axvline(x[0], color=color, linestyle="--", linewidth=1)
    axes.set_xlabel("transaction time (UTC)")
    axes.set_ylabel("alerts (cumulative)")
    axes.set_title("Flagged transactions per customer; dashed: the profile change")
    left: Any = min(change.last_updated for change in changes) - timedelta(seconds=5)
    axes.set_xlim(left=left)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    return figure


def counts_table(alerts: Mapping[str, Sequence[Alert]], changes: Sequence[PostedChange]) -> str:
    columns = ("customer_id", "account_no", "change", "changed_at", "alerts", "first_alert", "last_alert")
    rows = []
    for change in changes:
        found = alerts.get(change.customer_id, ())
        first = found[0].tranpostdt if found else None
        last = found[-1].tranpostdt if found else None
        rows.append(
            [change.customer_id, change.account_no, change.change_type, change.last_updated, len(found), first, last]
        )
    return format_table(columns, rows)
