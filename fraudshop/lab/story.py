"""The proofshop story on the local stack, told by ``fraudshop demo`` and by the presenter notebook
``notebooks/fraudshop_demo.ipynb`` with the same steps:

1. :func:`start_stack`: the local Kafka and Cassandra, the tables and the topic;
2. :func:`start_services`: the HTTP API and the streaming job (spark-submit);
3. :func:`start_producer` and :func:`watch_transactions`: transactions arrive;
4. :func:`store_baselines`: the bank's customer system sends the three customers' profiles;
   :func:`put_profile`, :func:`wait_for_alerts`, :func:`show_alerts`: each sends an edited one, for
   each of :data:`DEMO_UPDATES`: a real change flags the account's transactions from the next
   micro-batch on, a formatting edit (:func:`show_nothing_flagged`) flags nothing;
5. :func:`watch_alerts`, :func:`plot_alerts`, :func:`show_counts`: the stream keeps flagging;
6. the rules chapter: :func:`watch_notifications`, :func:`add_demo_rules` (CUST-DAVE caps his app-store
   spend at £20 a month, the coffee shop asks staff to confirm over £50), :func:`send_purchases`,
   :func:`show_notifications` (the hits, announced live on the notifications topic) and
   :func:`show_rule_hits` (the same hits as the API returns them);
7. the similarity chapter: :func:`seed_known_cases` (the workload's labelled patterns), :func:`tested_card`
   and :func:`send_ordinary_month` (CUST-ERIN's month, scored), :func:`send_card_testing` (her card is
   tested), :func:`foretell_similarity_hits` (what the job's functions say it will find),
   :func:`show_similarity_notifications` and :func:`show_burst_scores`;
8. the authorization chapter: :func:`confirm_at_desk` (the analyst confirms the burst's alerts at the desk),
   :func:`train_demo_model`
   (the risk model learns from it) and :func:`authorize_payment` (``POST /authorize`` of
   :func:`next_card_test`, decided before it posts: blocked, with its reasons).

:class:`Running` holds everything started, and stops it all, also when a step fails halfway (and at
interpreter exit). Every wait is bounded, and gives up at once when the job has stopped.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cassandra.cluster import Session
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fraudshop.config import Config, KafkaConfig, as_environment
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.desk import DeskStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.reads import ALERT_SUMMARY_COLUMNS
from fraudshop.io.cassandra.schema import apply_schema
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.kafka.notification_reader import NotificationFeed
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.launcher import TRAINING_JOB, start_job, stop_job
from fraudshop.lab.console import print_table, step
from fraudshop.lab.patterns import FraudPattern, pattern_instances, seeded_pattern_cases
from fraudshop.lab.stack import stack_up
from fraudshop.lab.waiting import wait_until
from fraudshop.lab.workload import (
    APP_STORE_ID,
    COFFEE_SHOP_ID,
    account_number,
    merchants_by_id,
    record_time,
    synthetic_transactions,
)
from fraudshop.model.cases import (
    SIMILARITY_KIND,
    SIMILARITY_RULE_ID,
    FraudCase,
    KnownCases,
    scores_against,
    transaction_case_id,
)
from fraudshop.model.changes import as_utc
from fraudshop.model.desk import Alert as DeskAlert
from fraudshop.model.desk import ReviewAction, TransactionKey
from fraudshop.model.features import TRANSACTION_INPUTS, events_frame, transactions_frame, vectors_of
from fraudshop.model.records import Transaction
from fraudshop.model.risk import RiskModel
from fraudshop.model.rule_evaluation import Txn, judge_batch
from fraudshop.model.rules import OWNER_FIELDS, PARAMETERS, RULE_DEFINITION, Rule, RuleKind
from fraudshop.model.tables import TRANSACTION_KEY
from fraudshop.service.client import ApiClient, DeskSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoUpdate:
    """A customer of the story: the profile the bank first sends, then the edited one."""

    customer_id: str
    #: What the customer did, as the story tells it.
    told: str
    baseline: dict[str, Any]
    edited: dict[str, Any]

    @property
    def account_no(self) -> str:
        """The customer's one account in the story."""
        return str(self.baseline["accounts"][0])


def _profile(account_index: int, email: str, phone: str, *address: str) -> dict[str, Any]:
    *lines, city, postcode = address
    return {
        "email": email,
        "phone": phone,
        "address": {"lines": lines, "city": city, "postcode": postcode, "country": "GB"},
        "accounts": [account_number(account_index)],
    }


_ALICE = _profile(3, "alice@example.com", "+44 20 7946 0101", "4 Elm Row", "London", "N1 9GU")
_BOB = _profile(11, "bob@example.com", "+44 20 7946 0202", "Flat 7", "22 Dock Street", "London", "E1 8JP")
_CAROL = _profile(27, "carol@example.com", "+44 20 7946 0303", "9 Cedar Avenue", "London", "SE10 8XJ")

#: The three customers of the story, in order: Alice edits her email, Bob's phone is re-entered in
#: national format (the same number: nothing is flagged), Carol moves house.
DEMO_UPDATES: tuple[DemoUpdate, ...] = (
    DemoUpdate("CUST-ALICE", "edits her email", _ALICE, {**_ALICE, "email": "alice.w@example.net"}),
    DemoUpdate("CUST-BOB", "has his phone re-entered in national format", _BOB, {**_BOB, "phone": "020 7946 0202"}),
    DemoUpdate(
        "CUST-CAROL",
        "moves house",
        _CAROL,
        {
            **_CAROL,
            "address": {"lines": ["31 Canal Street"], "city": "Manchester", "postcode": "M1 3HE", "country": "GB"},
        },
    ),
)
#: The customer of the rules chapter: his one account is the last account number, outside any producer's
#: range, so every transaction on it is one the story sends and the chapter's hits are exactly those foretold.
RULES_CUSTOMER_ID = "CUST-DAVE"
_DAVE = _profile(9_999_999, "dave@example.com", "+44 20 7946 0404", "2 Mill Lane", "London", "SW9 8BH")
#: Every customer's first profile, as the bank's customer system sends it (:func:`store_baselines`).
BASELINES: tuple[tuple[str, dict[str, Any]], ...] = (
    *((demo.customer_id, demo.baseline) for demo in DEMO_UPDATES),
    (RULES_CUSTOMER_ID, _DAVE),
)
#: The producer stops by itself after this long, should a notebook be left running.
PRODUCER_SAFETY_LIMIT = timedelta(minutes=30)
#: The latest transactions as the story shows them: their key, what and where.
LATEST_TRANSACTION_COLUMNS: tuple[str, ...] = (*TRANSACTION_KEY, "amount", "merchant")


def _wait_until(
    what: str, ready: Callable[[], bool], alive: Callable[[], None], timeout: float, interval: float = 1
) -> float:
    """Wait until ``ready()``, at most ``timeout`` seconds; ``alive()`` raises as soon as what we
    wait on has died, which ends the wait at once. Returns the seconds waited."""

    def check() -> bool:
        alive()
        return ready()

    with step(f"waiting for {what}"):
        return wait_until(check, timeout, what, interval=interval)


def _utc(text: str) -> datetime:
    """An ISO-8601 time from the API ("Z" or an offset) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    return as_utc(moment).astimezone(UTC)


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
    """One row of ``cust_fraud`` as ``GET /customers/{id}/alerts`` returns it (the columns a person
    reads: :data:`ALERT_SUMMARY_COLUMNS`)."""

    customer_id: str
    tranpostdt: datetime
    tranid: str
    account_no: str
    amount: float
    change_type: str
    last_updated: datetime
    qualifying_changes: int
    detected_at: datetime | None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Alert:
        return cls(
            customer_id=item["customer_id"],
            tranpostdt=_utc(item["tranpostdt"]),
            tranid=item["tranid"],
            account_no=item["account_no"],
            amount=float(item["amount"]),
            change_type=item["change_type"],
            last_updated=_utc(item["last_updated"]),
            qualifying_changes=int(item["qualifying_changes"] or 0),
            detected_at=_utc(item["detected_at"]) if item.get("detected_at") else None,
        )

    def shown_line(self) -> str:
        """The parseable line the notebook's last cell prints for each alert it showed."""
        return f"SHOWN {self.customer_id} {self.account_no} {self.tranid} {self.tranpostdt.isoformat()}"


@dataclass
class Running:
    """Everything the story starts. :meth:`stop` ends it all, in an order that signals every
    process before waiting for any; it also runs when the interpreter exits, so a failed step
    leaves nothing behind. The local stack is not ours to stop."""

    config: Config
    session: Session | None = None
    stop_producing: threading.Event = field(default_factory=threading.Event)
    producer: threading.Thread | None = None
    api: subprocess.Popen[bytes] | None = None
    job: subprocess.Popen[bytes] | None = None
    _resources: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    @property
    def keyspace(self) -> str:
        return self.config.cassandra.keyspace

    @property
    def cassandra(self) -> Session:
        """The driver session, opened by :func:`start_stack` and closed by :meth:`stop`."""
        if self.session is None:
            self.session = self._resources.enter_context(cassandra_session(self.config.cassandra))
        return self.session

    def close_on_stop(self, close: Callable[[], None]) -> None:
        """Have :meth:`stop` call ``close`` (in reverse order of registration, after the processes)."""
        self._resources.callback(close)

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
        self.session = None


def with_api_token(config: Config) -> Config:
    """``config`` with an API token: the configured one, or a fresh one for this run, so the API
    is protected as in production with nothing to configure."""
    if config.api.token:
        return config
    return config.with_settings(f"api.token={secrets.token_urlsafe(16)}")


def with_demo_access(config: Config) -> Config:
    """``config`` with an API token (:func:`with_api_token`) and, unless ``desk.users`` names analysts
    already, the demo's analyst with a fresh token for this run, who signs in to the desk."""
    config = with_api_token(config)
    if config.desk.users:
        return config
    return config.with_settings(f"desk.users={DEMO_ANALYST}:analyst:{secrets.token_urlsafe(18)}")


def log_dir(config: Config) -> Path:
    """Where the story's API and job write their logs: beside the local stack's."""
    logs = config.stack.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def start_stack(config: Config) -> Running:
    """Start the local stack (instant when it runs), then create the tables and the topic if missing."""
    for server, seconds in stack_up(config).items():
        print(f"{server}: ready" + (f" after {seconds:.0f} s" if seconds else " (already running)"), flush=True)
    running = Running(config)
    apply_schema(running.cassandra, config.cassandra)
    ensure_topic(config.kafka)
    return running


def start_api(config: Config, output: IO[bytes], timeout_seconds: float = 60) -> subprocess.Popen[bytes]:
    """Start ``fraudshop api`` for ``config`` in the background and wait until it is healthy."""
    api = subprocess.Popen(
        [sys.executable, "-m", "fraudshop.cli", "api"],
        env={**os.environ, **as_environment(config)},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = ApiClient(f"http://{config.api.host}:{config.api.port}", config.api.token)

    def api_alive() -> None:
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.returncode}; see {Path(output.name)}")

    try:
        _wait_until("healthy API", client.is_healthy, api_alive, timeout_seconds, interval=0.5)
    except TimeoutError:
        api.terminate()
        raise
    return api


def start_services(running: Running, log_name: str) -> ApiClient:
    """Start the HTTP API (returns once it answers /health) and the streaming job, their logs
    ``<log_name>-api.log`` and ``<log_name>-job.log`` under :func:`log_dir`."""
    config = running.config
    logs = log_dir(config)
    with open(logs / f"{log_name}-api.log", "ab") as output:
        running.api = start_api(config, output)
    api = ApiClient(f"http://{config.api.host}:{config.api.port}", config.api.token)
    job_log = logs / f"{log_name}-job.log"
    with open(job_log, "ab") as output:
        running.job = start_job(config, output)
    print(f"API up at {api.base_url} (docs: /docs); job starting (spark-submit), its log: {job_log}", flush=True)
    return api


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


def transaction_count(session: Session, keyspace: str, accounts: int) -> int:
    """Stored transactions of the story's accounts (one partition count each)."""
    statement = session.prepare(f"SELECT count(*) FROM {keyspace}.transaction WHERE account_no = ?")
    return sum(session.execute(statement, (account_number(i),)).one()[0] for i in range(accounts))


def _recent_transactions(session: Session, keyspace: str, accounts: int, per_account: int) -> list[Any]:
    statement = session.prepare(
        f"SELECT {', '.join(LATEST_TRANSACTION_COLUMNS)} FROM {keyspace}.transaction WHERE account_no = ? LIMIT ?"
    )
    rows = [row for i in range(accounts) for row in session.execute(statement, (account_number(i), per_account))]
    return sorted(rows, key=lambda row: row.tranpostdt, reverse=True)


def watch_transactions(running: Running, accounts: int, seconds: float = 8, timeout: float = 300) -> None:
    """Wait for the job's first micro-batch to store transactions of this run, then print the
    stored count for a few seconds and the latest transactions."""
    session, keyspace = running.cassandra, running.keyspace
    earlier = transaction_count(session, keyspace, accounts)  # those of an earlier run, if any
    waited = _wait_until(
        "new transaction in Cassandra",
        lambda: transaction_count(session, keyspace, accounts) > earlier,
        running.check_job,
        timeout,
        interval=2,
    )
    print(f"first transactions stored after {waited:.0f} s", flush=True)
    for _ in range(max(1, round(seconds / 2))):
        time.sleep(2)
        print(f"{_clock(datetime.now(UTC))}  {transaction_count(session, keyspace, accounts):6d} stored", flush=True)
    latest = _recent_transactions(session, keyspace, accounts, per_account=1)[:6]
    print("\nThe latest ones:", flush=True)
    print_table(LATEST_TRANSACTION_COLUMNS, [[getattr(row, c) for c in LATEST_TRANSACTION_COLUMNS] for row in latest])


def store_baselines(running: Running, api: ApiClient) -> None:
    """The bank's customer system sends the story's customers' profiles (:data:`BASELINES`): each is
    their first, a baseline that records no change. An earlier run's stored profiles are removed first,
    so that these are first profiles again."""
    for customer_id, _ in BASELINES:
        # A lightweight transaction too: the row is written only with them (see bank.cql).
        running.cassandra.execute(
            f"DELETE FROM {running.keyspace}.customer WHERE customer_id = %s IF EXISTS", (customer_id,)
        )
    rows = []
    for customer_id, baseline in BASELINES:
        stored = api.put_profile(customer_id, baseline)
        profile = stored["profile"]
        rows.append([customer_id, stored["outcome"], profile["email"], profile["phone"], profile["address"]["city"]])
    print_table(("customer_id", "outcome", "email", "phone", "city"), rows)


def put_profile(api: ApiClient, demo: DemoUpdate) -> PostedChange | None:
    """``PUT /customers/{id}/profile`` with the customer's edited profile, changed now; prints what
    fraudshop made of it. Returns the change recorded, or None when it was no change."""
    stored = api.put_profile(demo.customer_id, demo.edited)
    print(f"PUT /customers/{demo.customer_id}/profile: {demo.customer_id} {demo.told}", flush=True)
    if not stored["changes"]:
        print(f"   {stored['outcome']}: stored phone {stored['profile']['phone']}, nothing recorded", flush=True)
        return None
    recorded = stored["changes"][0]
    change = PostedChange(
        customer_id=recorded["customer_id"],
        account_no=recorded["account_no"],
        change_type=recorded["change_type"],
        last_updated=_utc(recorded["last_updated"]),
        recorded_at=_utc(recorded["recorded_at"]),
    )
    print(
        f"   {stored['outcome']}: {change.change_type} change recorded on {change.account_no} "
        f"at {_clock(change.last_updated)} UTC",
        flush=True,
    )
    return change


def show_nothing_flagged(api: ApiClient, running: Running, demo: DemoUpdate, seconds: float = 6) -> list[Alert]:
    """Watch the customer's alerts for ``seconds`` (several micro-batches) after an update that was
    no change; print and return those naming a change made since the stored profile (none)."""
    since = _utc(api.profile(demo.customer_id)["updated_at"])
    time.sleep(seconds)
    running.check_job()
    found = [
        alert
        for alert in (Alert.from_api(item) for item in api.alerts_of_customer(demo.customer_id))
        if alert.last_updated >= since
    ]
    verdict = "nothing flagged" if not found else "flagged: the update was recorded after all"
    print(f"{demo.customer_id}: {len(found)} alert(s) {seconds:.0f} s on: {verdict}\n", flush=True)
    return found


def alerts_of(api: ApiClient, change: PostedChange) -> list[Alert]:
    """The alerts that name ``change`` (not those of an earlier run's change), oldest first."""
    found = (Alert.from_api(item) for item in api.alerts_of_customer(change.customer_id))
    return sorted((alert for alert in found if alert.last_updated == change.last_updated), key=lambda a: a.tranpostdt)


def wait_for_alerts(api: ApiClient, change: PostedChange, running: Running, timeout: float = 120) -> list[Alert]:
    """Wait until the change has flagged a transaction; return its alerts, oldest first."""
    _wait_until(
        f"alert for {change.customer_id}'s change", lambda: bool(alerts_of(api, change)), running.check_job, timeout
    )
    return alerts_of(api, change)


def show_alerts(running: Running, change: PostedChange, alerts: Sequence[Alert]) -> None:
    """How soon after the change its first alert was written, that none of the account's earlier
    transactions is flagged for it, and its alerts."""
    first = alerts[0]
    if first.detected_at is not None:
        delay = (first.detected_at - change.recorded_at).total_seconds()
        print(f"first alert written by the micro-batch at {_clock(first.detected_at)}, {delay:.1f} s after the change")
    before = running.cassandra.execute(
        f"SELECT count(*) FROM {running.keyspace}.transaction WHERE account_no = %s AND tranpostdt < %s",
        (change.account_no, change.last_updated),
    ).one()[0]
    flagged_before = sum(alert.tranpostdt < change.last_updated for alert in alerts)
    print(f"{change.account_no} had {before} transactions before the change; {flagged_before} of them flagged for it\n")
    print_table(ALERT_SUMMARY_COLUMNS, [[getattr(alert, c) for c in ALERT_SUMMARY_COLUMNS] for alert in alerts])


def watch_alerts(api: ApiClient, changes: Sequence[PostedChange], running: Running, seconds: float = 15) -> None:
    """Print each customer's alert count every 5 s for ``seconds``: the stream keeps flagging."""
    for tick in range(max(1, round(seconds / 5)) + 1):
        if tick:
            time.sleep(5)
        running.check_job()
        counts = "  ".join(f"{change.customer_id} {len(alerts_of(api, change)):4d}" for change in changes)
        print(f"{_clock(datetime.now(UTC))}  {counts}", flush=True)


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


def show_counts(alerts: Mapping[str, Sequence[Alert]], changes: Sequence[PostedChange]) -> None:
    """Per customer: the change, how many alerts it brought, the first and the last."""
    rows = []
    for change in changes:
        found = alerts.get(change.customer_id, ())
        first = found[0].tranpostdt if found else None
        last = found[-1].tranpostdt if found else None
        rows.append(
            [change.customer_id, change.account_no, change.change_type, change.last_updated, len(found), first, last]
        )
    print_table(("customer_id", "account_no", "change", "changed_at", "alerts", "first_alert", "last_alert"), rows)


# The rules chapter: a customer's cap, a merchant's staff check, their hits announced live.

#: Dave's monthly cap at the app store, and the coffee shop's staff-confirmation limit.
APP_STORE_CAP = 20.0
COFFEE_STAFF_LIMIT = 50.0
#: The chapter's rules, as ``POST /rules`` bodies. Dave's cap is customer-scoped: the job finds his
#: account through his stored profile (``account_holder``), as a bank's rule would.
DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "kind": RuleKind.MERCHANT_MONTHLY_CAP.value,
        "customer_id": RULES_CUSTOMER_ID,
        "amount_limit": APP_STORE_CAP,
        "capped_merchant_id": APP_STORE_ID,
    },
    {"kind": RuleKind.MERCHANT_AMOUNT_OVER.value, "merchant_id": COFFEE_SHOP_ID, "amount_limit": COFFEE_STAFF_LIMIT},
)
#: A rule hit as the story shows it (columns of ``rule_hit``).
HIT_COLUMNS: tuple[str, ...] = (
    "tranpostdt",
    "tranid",
    "kind",
    "action",
    "amount",
    "evidence_value",
    "evidence_limit",
    "reason",
)


@dataclass(frozen=True)
class Purchase:
    """A purchase of Dave's that the story sends to Kafka itself."""

    merchant_id: str
    amount: float
    told: str


#: Dave's purchases, in this order, about a second apart: two apps (the second takes his month at the
#: app store to 21.99, over his £20 cap), then a round of coffees over the coffee shop's £50.
DEMO_PURCHASES: tuple[Purchase, ...] = (
    Purchase(APP_STORE_ID, 12.00, "buys a game"),
    Purchase(APP_STORE_ID, 9.99, "buys an upgrade"),
    Purchase(COFFEE_SHOP_ID, 65.00, "buys coffee and cake for the office"),
)


@dataclass(frozen=True)
class ForetoldHit:
    """A hit the story expects of its rules on its purchases (docs/rules.md, "When each rule fires")."""

    tranid: str
    kind: str
    action: str
    amount: float
    evidence_value: float
    evidence_limit: float


def rules_customer_account() -> str:
    """Dave's one account."""
    return str(_DAVE["accounts"][0])


def is_demo_rule(rule: Mapping[str, Any]) -> bool:
    """Whether a stored rule (as the API returns it) is one of :data:`DEMO_RULES`: the same kind, owner
    and parameters. Only those are removed before a run, so that reruns do not stack rules while a
    rule someone added by hand stays."""
    for body in DEMO_RULES:
        parameters = {name: value for name, value in body.items() if name != "kind" and name not in OWNER_FIELDS}
        if (
            rule.get("kind") == body["kind"]
            and all(rule.get(name) == body.get(name) for name in OWNER_FIELDS)
            and rule.get("parameters") == parameters
        ):
            return True
    return False


def purchase_transaction(purchase: Purchase, tranpostdt: datetime) -> Transaction:
    """Dave's purchase as a JSON record of the producer's, with the merchant's fields."""
    merchant = merchants_by_id()[purchase.merchant_id]
    channel, code, description = merchant.sales[0]
    return {
        "account_no": rules_customer_account(),
        "tranpostdt": record_time(tranpostdt),
        "tranid": str(uuid.uuid4()),
        "amount": purchase.amount,
        "merchant": merchant.name,
        "merchant_id": merchant.merchant_id,
        "merchant_category": merchant.mcc,
        "channel": channel,
        "trancd": code,
        "trandescription": description,
        "transtat": "POSTED",
        "trantype": "DEBIT",
        "tranamt": purchase.amount,
    }


def foretell_hits(transactions: Sequence[Transaction], rules: Sequence[Mapping[str, Any]]) -> list[ForetoldHit]:
    """The hits ``rules`` (each as a ``POST /rules`` body or as the API returns it; in force before the
    purchases) find on ``transactions``, the account's only ones, as the job's rules are stated in plain
    Python (:mod:`fraudshop.model.rule_evaluation`), in event time."""
    in_force = [
        Rule(
            uuid.uuid5(uuid.NAMESPACE_URL, repr(sorted(rule.items(), key=str))),
            RULE_DEFINITION.validate_python(_definition_fields(rule)),
            datetime(1970, 1, 1, tzinfo=UTC),
        )
        for rule in rules
    ]
    purchases = [
        Txn(
            t["account_no"],
            _utc(t["tranpostdt"]),
            t["tranid"],
            float(t["amount"]),
            t.get("merchant_id"),
            t.get("merchant_category"),
        )
        for t in transactions
    ]
    holders = {rules_customer_account(): RULES_CUSTOMER_ID}
    hits = judge_batch(purchases, {}, in_force, holders, set())
    foretold = [
        ForetoldHit(hit.tranid, hit.kind, hit.action, hit.amount, hit.evidence_value or 0.0, hit.evidence_limit or 0.0)
        for hit in sorted(hits, key=lambda hit: (hit.tranpostdt, hit.tranid, hit.kind))
    ]
    return foretold


def _definition_fields(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's definition (kind, owners, parameters) from a POST /rules body or an API answer."""
    fields = {**rule, **(rule.get("parameters") or {})}
    wanted = ("kind", *OWNER_FIELDS, *PARAMETERS)
    return {name: value for name, value in fields.items() if name in wanted and value is not None}


#: :func:`notification_line` parsed: received (clock time), seconds since the transaction was posted,
#: action, kind, customer, merchant, amount, tranid, reason.
NOTIFIED_LINE = re.compile(r"^NOTIFIED (\S+) \+(-?[0-9.]+)s (\S+) (\S+) (\S+) (\S+) (-?[0-9.]+) (\S+): (.*)$", re.M)


def notification_line(message: Mapping[str, Any], received_at: datetime) -> str:
    """A notification as the story prints it, received at ``received_at``, with how long after its
    transaction was posted: parseable (:data:`NOTIFIED_LINE`), its reason last."""

    def field(name: str) -> str:
        value = message.get(name)
        return "-" if value in (None, "") else str(value)

    lag = (received_at - _utc(message["tranpostdt"])).total_seconds() if message.get("tranpostdt") else 0.0
    return (
        f"NOTIFIED {_clock(received_at)} +{lag:.1f}s {field('action')} {field('kind')} {field('customer_id')} "
        f"{field('merchant_id')} {float(message.get('amount') or 0):.2f} {field('tranid')}: {field('reason')}"
    )


def watch_notifications(running: Running) -> NotificationFeed:
    """Start listening to the notifications topic from its end now (closed by ``running.stop()``)."""
    watch = NotificationFeed(running.config.kafka, from_beginning=False)
    running.close_on_stop(watch.close)
    return watch


def add_demo_rules(running: Running, api: ApiClient) -> list[dict[str, Any]]:
    """Dave's cap and the coffee shop's staff check, through ``POST /rules``; prints and returns the
    stored rules. An earlier run's (:func:`is_demo_rule`) are removed first, and Dave's account's
    transactions too: the month's spend starts at 0 again."""
    earlier = [
        rule
        for rule in (*api.rules_of_customer(RULES_CUSTOMER_ID), *api.rules_of_merchant(COFFEE_SHOP_ID))
        if is_demo_rule(rule)
    ]
    for rule in earlier:
        api.remove_rule(str(rule["rule_id"]))
    running.cassandra.execute(
        f"DELETE FROM {running.keyspace}.transaction WHERE account_no = %s", (rules_customer_account(),)
    )
    if earlier:
        print(f"removed {len(earlier)} rule(s) of an earlier run", flush=True)
    added = [api.add_rule(body["kind"], **{k: v for k, v in body.items() if k != "kind"}) for body in DEMO_RULES]
    print_table(
        ("rule_id", "kind", "scope", "scope_id", "parameters", "action", "created_at"),
        [
            [
                rule["rule_id"],
                rule["kind"],
                rule["scope"],
                rule["scope_id"],
                json.dumps(rule["parameters"]),
                rule["action"],
                _utc(rule["created_at"]),
            ]
            for rule in added
        ],
    )
    return added


def send_purchases(kafka: KafkaConfig, purchases: Sequence[Purchase] = DEMO_PURCHASES) -> list[Transaction]:
    """Send Dave's purchases to the transactions topic, one a second, each posted as it is sent (after
    the rules' created_at, so they judge it); prints and returns them."""
    sent: list[Transaction] = []

    def stamped() -> Iterator[Transaction]:
        for purchase in purchases:
            transaction = purchase_transaction(purchase, datetime.now(UTC))
            sent.append(transaction)
            print(
                f"{_clock(_utc(transaction['tranpostdt']))}  {RULES_CUSTOMER_ID} {purchase.told}: "
                f"{purchase.amount:.2f} at {transaction['merchant']} ({purchase.merchant_id})",
                flush=True,
            )
            yield transaction

    send_transactions(kafka, stamped(), rate=1.0)
    return sent


def show_notifications(
    watch: NotificationFeed,
    running: Running,
    rules: Sequence[Mapping[str, Any]],
    expected: int,
    timeout: float = 60,
    accepts: Callable[[Mapping[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Print the notifications of ``rules`` (those ``accepts`` takes, if given) as they come, until
    ``expected`` have come or ``timeout`` seconds passed; returns them. Printed from the calling thread,
    so they show in a notebook cell."""
    rule_ids = {str(rule["rule_id"]) for rule in rules}
    print(f"listening on topic {watch.topic}:", flush=True)
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(shown) < expected and (left := deadline - time.monotonic()) > 0:
        running.check_job()
        for message in watch.poll(min(left, 1.0)):
            if str(message.get("rule_id")) in rule_ids and (accepts is None or accepts(message)):
                print(notification_line(message, datetime.now(UTC)), flush=True)
                shown.append(message)
    if len(shown) < expected:
        print(f"{len(shown)} of {expected} notifications within {timeout:.0f} s", flush=True)
    return shown


def _hit_rows(hits: Sequence[Mapping[str, Any]]) -> list[list[object]]:
    def value(hit: Mapping[str, Any], name: str) -> object:
        if name == "tranpostdt":
            return _utc(hit[name])
        if name in ("amount", "evidence_value", "evidence_limit") and hit.get(name) is not None:
            return float(hit[name])
        return hit.get(name)

    return [[value(hit, name) for name in HIT_COLUMNS] for hit in hits]


def show_rule_hits(
    api: ApiClient,
    running: Running,
    rules: Sequence[Mapping[str, Any]],
    transactions: Sequence[Transaction],
    expected: int,
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Dave's hits and the coffee shop's of the purchases' day, of the chapter's rules, as the API
    returns them (waiting until the ``expected`` hits of Dave's are stored: a batch announces its hits
    just before it stores them). Returns Dave's."""
    rule_ids = {str(rule["rule_id"]) for rule in rules}

    def customer_hits() -> list[dict[str, Any]]:
        return [hit for hit in api.hits_of_customer(RULES_CUSTOMER_ID) if str(hit["rule_id"]) in rule_ids]

    _wait_until(
        f"{RULES_CUSTOMER_ID}'s rule hits", lambda: len(customer_hits()) >= expected, running.check_job, timeout
    )
    hits = customer_hits()
    print(f"GET /customers/{RULES_CUSTOMER_ID}/rule-hits", flush=True)
    print_table(HIT_COLUMNS, _hit_rows(hits))
    days: list[date] = sorted(
        {_utc(t["tranpostdt"]).date() for t in transactions if t.get("merchant_id") == COFFEE_SHOP_ID}
    )
    for day in days:
        merchant_hits = [hit for hit in api.hits_of_merchant(COFFEE_SHOP_ID, day) if str(hit["rule_id"]) in rule_ids]
        print(f"\nGET /merchants/{COFFEE_SHOP_ID}/rule-hits?day={day.isoformat()}", flush=True)
        print_table(HIT_COLUMNS, _hit_rows(merchant_hits))
    return hits


def run_rules_chapter(running: Running, api: ApiClient) -> list[dict[str, Any]]:
    """The whole chapter, as ``fraudshop demo`` tells it: returns Dave's hits."""
    watch = watch_notifications(running)
    rules = add_demo_rules(running, api)
    print("   Dave shops:")
    purchases = send_purchases(running.config.kafka)
    foretold = foretell_hits(purchases, rules)
    print(f"   {len(foretold)} of them need a confirmation. The job announces each hit on Kafka:")
    show_notifications(watch, running, rules, expected=len(foretold))
    print("\n   And stores it in rule_hit, read by customer and by merchant-day:")
    return show_rule_hits(api, running, rules, purchases, expected=len(foretold))


def run_demo(config: Config, duration: timedelta, rate: float, accounts: int) -> None:
    """``fraudshop demo``: the story in a terminal. Each change is followed by ``duration`` / 3 of
    streaming, its alert counts printed as they grow; then the rules chapter (about 15 s)."""
    generated_token = not config.api.token
    config = with_demo_access(config)
    print("== 1. Local stack: a Kafka broker and a Cassandra node on 127.0.0.1", flush=True)
    running = start_stack(config)
    try:
        print("== 2. The profile-change API and the streaming job", flush=True)
        api = start_services(running, "demo")
        if generated_token:  # so that you can call the API yourself while the demo runs
            token_file = log_dir(config) / "demo-api-token"
            token_file.touch(mode=0o600)
            token_file.write_text(config.api.token + "\n")
            print(f"   bearer token of this run's API in {token_file}")
        print(f"== 3. Producing {rate:.0f} transactions/s over {accounts} accounts to topic {config.kafka.topic}")
        logging.getLogger("fraudshop.io.kafka.producer").setLevel(logging.WARNING)  # the alerts are the show
        running.producer = start_producer(config.kafka, accounts, rate, stop=running.stop_producing)
        watch_transactions(running, accounts)
        print("\n== 4. Transactions are landing in bank.transaction. The bank's customer system sends profiles:")
        store_baselines(running, api)
        print("   Now customers edit their profiles:")
        changes: list[PostedChange] = []
        for demo in DEMO_UPDATES:
            change = put_profile(api, demo)
            if change is None:
                show_nothing_flagged(api, running, demo)
                continue
            show_alerts(running, change, wait_for_alerts(api, change, running))
            changes.append(change)
            watch_alerts(api, changes, running, seconds=duration.total_seconds() / len(DEMO_UPDATES))
            print()
        print("== 5. Alerts per customer. One customer's: fraudshop alerts --customer CUST-ALICE")
        show_counts({change.customer_id: alerts_of(api, change) for change in changes}, changes)
        print(
            f"\n== 6. Rules: {RULES_CUSTOMER_ID} caps his app-store spend at {APP_STORE_CAP:.0f} a month, "
            f"the coffee shop's staff confirm over {COFFEE_STAFF_LIMIT:.0f} (POST /rules)",
            flush=True,
        )
        run_rules_chapter(running, api)
        print(
            f"   Follow them yourself: fraudshop notifications --follow; fraudshop hits --customer {RULES_CUSTOMER_ID}"
        )
        print(
            f"\n== 7. Similarity: the fraud team's known cases, then {TESTED_CUSTOMER_ID}'s card is tested",
            flush=True,
        )
        burst = run_similarity_chapter(running)
        print(f"   Her hits: fraudshop hits --customer {TESTED_CUSTOMER_ID}; the cases: fraudshop cases list")
        print(
            "\n== 8. Before it posts: the analyst confirms the burst at the desk, and the next test is decided",
            flush=True,
        )
        run_authorize_chapter(running, api, burst)
        print(f"   Every decision is in {running.keyspace}.authorization; the API's schema: {api.base_url}/docs")
        print(
            "   The desk is served while the demo runs; after it, `fraudshop api` serves it for the analysts of"
            " FRAUDSHOP_DESK__USERS (docs/desk.md)"
        )
    finally:
        running.stop()
    print("The local stack is still running for your queries; stop it with: fraudshop stack down")


#: The similarity chapter's customer: a month of ordinary card use, then her card is tested.
TESTED_CUSTOMER_ID = "CUST-ERIN"
#: Her account: outside the producer's and the other customers' ranges.
TESTED_ACCOUNT = account_number(9_999_998)
#: The known cases the chapter seeds: this many instances of each labelled pattern.
SEEDED_PER_PATTERN = 25
#: What the chapter's tables show of a scored transaction.
SCORE_COLUMNS_SHOWN: tuple[str, ...] = ("tranpostdt", "amount", "merchant_id", "risk_score", "nearest case", "hit")


@dataclass(frozen=True)
class TestedCard:
    """Erin's month of ordinary purchases and the card-testing burst that follows, as records."""

    history: tuple[Transaction, ...]
    burst: tuple[Transaction, ...]


def tested_card(seed: int = 7) -> TestedCard:
    """A card-testing instance of the workload's labelled patterns, on Erin's account: a month of
    ordinary purchases ending a few minutes ago, then 6 to 12 payments of 0.50 to 2.00 at an online
    merchant new to her (:mod:`fraudshop.lab.patterns`)."""
    (instance,) = pattern_instances(FraudPattern.CARD_TESTING, 1, seed, datetime.now(UTC) - timedelta(minutes=5))

    def hers(transaction: Transaction) -> Transaction:
        return {**transaction, "account_no": TESTED_ACCOUNT}

    return TestedCard(tuple(map(hers, instance.history)), tuple(map(hers, instance.frauds)))


def seed_known_cases(running: Running, per_pattern: int = SEEDED_PER_PATTERN) -> list[FraudCase]:
    """Record the workload's labelled patterns as known cases (as ``fraudshop cases seed`` does) and
    print how many of each; returns every case now known. Stops the background producer first: its
    synthetic accounts transact every few seconds, which the velocity block would read as bursts."""
    running.stop_producing.set()
    if running.producer is not None:
        running.producer.join(timeout=30)
    now = datetime.now(UTC)
    store = CaseStore(running.cassandra, running.keyspace)
    store.record(seeded_pattern_cases(per_pattern, 0, now))
    cases = store.all_cases()
    counts = Counter((case.pattern or "", case.label.value) for case in cases)
    print_table(("pattern", "label", "cases"), [[*key, count] for key, count in sorted(counts.items())])
    return cases


def _scored_rows(running: Running) -> dict[str, Any]:
    rows = running.cassandra.execute(
        "SELECT tranid, tranpostdt, amount, merchant_id, risk_score, nearest_cases "
        f"FROM {running.keyspace}.transaction WHERE account_no = %s",
        (TESTED_ACCOUNT,),
    )
    return {row.tranid: row for row in rows if row.risk_score is not None}


def send_ordinary_month(running: Running, card: TestedCard, timeout: float = 180) -> None:
    """Erin's account is hers (``account_holder``), any earlier run's transactions of it are gone, and
    her month of ordinary purchases is sent and scored; prints how they scored."""
    running.cassandra.execute(f"DELETE FROM {running.keyspace}.transaction WHERE account_no = %s", (TESTED_ACCOUNT,))
    running.cassandra.execute(
        f"INSERT INTO {running.keyspace}.account_holder (account_no, customer_id) VALUES (%s, %s)",
        (TESTED_ACCOUNT, TESTED_CUSTOMER_ID),
    )
    send_transactions(running.config.kafka, card.history, rate=0)
    wanted = {transaction["tranid"] for transaction in card.history}
    _wait_until(
        f"{TESTED_CUSTOMER_ID}'s month to be scored",
        lambda: wanted <= _scored_rows(running).keys(),
        running.check_job,
        timeout,
    )
    scores = sorted(row.risk_score for tranid, row in _scored_rows(running).items() if tranid in wanted)
    print(
        f"{TESTED_CUSTOMER_ID}: {len(scores)} ordinary purchases over a month, similarity scores "
        f"{scores[0]:.2f} to {scores[-1]:.2f} (median {scores[len(scores) // 2]:.2f}); a hit needs "
        f"{running.config.similarity.threshold:.2f}",
        flush=True,
    )


def send_card_testing(kafka: KafkaConfig, card: TestedCard) -> list[Transaction]:
    """The burst, one payment a second, each posted as it is sent; prints and returns them."""
    sent: list[Transaction] = []

    def stamped() -> Iterator[Transaction]:
        for transaction in card.burst:
            now = record_time(datetime.now(UTC))
            sent.append({**transaction, "tranpostdt": now})
            print(
                f"{_clock(_utc(now))}  {TESTED_CUSTOMER_ID}'s card pays {float(transaction['amount']):.2f} "
                f"at {transaction['merchant']} ({transaction['merchant_id']}, online)",
                flush=True,
            )
            yield sent[-1]

    send_transactions(kafka, stamped(), rate=1.0)
    return sent


def foretell_similarity_hits(running: Running, card: TestedCard, burst: Sequence[Transaction]) -> list[str]:
    """The burst's transactions whose similarity score reaches the threshold, computed here with the
    job's own functions (the vector against the stored month, the score against every known case):
    what the job should find."""
    history = transactions_frame(card.history)
    vectors = vectors_of(transactions_frame(burst), events_frame(history))
    known = KnownCases.of(CaseStore(running.cassandra, running.keyspace).all_cases())
    scores = scores_against(vectors, known, running.config.similarity.nearest_cases)
    threshold = running.config.similarity.threshold
    return [t["tranid"] for t, score in zip(burst, scores.risk_scores, strict=True) if score >= threshold]


def show_similarity_notifications(
    watch: NotificationFeed, running: Running, expected: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """Erin's ``similar_to_fraud`` notifications, printed as they come (as :func:`show_notifications`);
    other accounts' (the background traffic's last batches, scored against the new cases) are not hers."""
    return show_notifications(
        watch,
        running,
        [{"rule_id": str(SIMILARITY_RULE_ID)}],
        expected,
        timeout,
        accepts=lambda message: message.get("account_no") == TESTED_ACCOUNT,
    )


def _similarity_hits(running: Running) -> list[Any]:
    rows = running.cassandra.execute(
        f"SELECT tranid, kind FROM {running.keyspace}.rule_hit WHERE customer_id = %s", (TESTED_CUSTOMER_ID,)
    )
    return [row for row in rows if row.kind == SIMILARITY_KIND]


def show_burst_scores(
    running: Running, burst: Sequence[Transaction], expected_hits: int, timeout: float = 60
) -> list[Any]:
    """The burst as stored, once scored and its ``expected_hits`` hits stored (a batch announces its hits
    just before it stores them): each payment's similarity score, its nearest known case's pattern, and
    whether it was a hit; returns the rows."""
    wanted = {t["tranid"] for t in burst}
    _wait_until(
        "the burst's scores and hits",
        lambda: wanted <= _scored_rows(running).keys() and len(_similarity_hits(running)) >= expected_hits,
        running.check_job,
        timeout,
    )
    patterns = {case.case_id: case.pattern for case in CaseStore(running.cassandra, running.keyspace).all_cases()}
    threshold = running.config.similarity.threshold
    rows = sorted(
        (row for tranid, row in _scored_rows(running).items() if tranid in wanted), key=lambda r: r.tranpostdt
    )
    print_table(
        SCORE_COLUMNS_SHOWN,
        [
            [row.tranpostdt, row.amount, row.merchant_id, round(row.risk_score, 3),
             patterns.get(row.nearest_cases[0]) if row.nearest_cases else None, row.risk_score >= threshold]
            for row in rows
        ],
    )  # fmt: skip
    return rows


def run_similarity_chapter(running: Running) -> list[Transaction]:
    """The whole chapter, as ``fraudshop demo`` tells it: returns the burst as sent."""
    watch = watch_notifications(running)
    seed_known_cases(running)
    card = tested_card()
    send_ordinary_month(running, card)
    print(
        f"   Then {TESTED_CUSTOMER_ID}'s card is tested: tiny online payments, seconds apart, at a merchant new to her:"
    )
    burst = send_card_testing(running.config.kafka, card)
    foretold = foretell_similarity_hits(running, card, burst)
    print(f"   {len(foretold)} of {len(burst)} look like known card testing. The job announces each:")
    show_similarity_notifications(watch, running, expected=len(foretold))
    print("\n   And stores every payment's score with it:")
    show_burst_scores(running, burst, expected_hits=len(foretold))
    return burst


#: Who confirms the burst at the desk in the demo (``alert_review.analyst``, ``fraud_case.recorded_by``).
DEMO_ANALYST = "demo-analyst"
#: What the authorization chapter's table shows of each reason.
REASON_COLUMNS: tuple[str, ...] = ("signal", "kind", "outcome", "detail")


def desk_url(config: Config) -> str:
    return f"http://{config.api.host}:{config.api.port}/desk"


def show_desk(config: Config) -> None:
    """Where the desk is and how to sign in, as the demo prints it: the demo analyst's token goes to a file
    only you can read, never to the screen (nor to a notebook's saved output)."""
    analyst = config.desk.accounts.get(DEMO_ANALYST)
    if analyst is None:
        print(f"   The fraud team's desk: {desk_url(config)} (sign in as one of desk.users)", flush=True)
        return
    token_file = log_dir(config) / "demo-desk-token"
    token_file.touch(mode=0o600)
    token_file.write_text(analyst.token + "\n")
    where = f"sign in as {DEMO_ANALYST}, token in {token_file}"
    print(f"   The fraud team's desk: {desk_url(config)} ({where})", flush=True)


def confirm_at_desk(running: Running, burst: Sequence[Transaction], timeout: float = 60) -> list[FraudCase]:
    """The analyst confirms the burst's alerts at the desk, over HTTP as a browser does (signed in, the form's
    CSRF token): each becomes a ``fraud_case`` (source ``analyst``, pattern card testing) with the vector the
    job stored, so the risk model can learn from them. Prints and returns the cases."""
    config = running.config
    # By whole key: the burst's ids are the same every run (a seeded card), its times are this run's.
    wanted = {TransactionKey.of(t["account_no"], datetime.fromisoformat(t["tranpostdt"]), t["tranid"]) for t in burst}
    store = DeskStore(running.cassandra, running.keyspace)
    days = sorted({key.day for key in wanted})

    def burst_alerts() -> list[DeskAlert]:
        return [alert for day in days for alert in store.alerts_of_day(day) if alert.key in wanted]

    _wait_until("the burst's alerts on the desk", lambda: bool(burst_alerts()), running.check_job, timeout)
    alerts = sorted(burst_alerts(), key=lambda alert: alert.key)
    show_desk(config)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the desk's answers are the show, not its requests
    desk = DeskSession(desk_url(config).removesuffix("/desk"), DEMO_ANALYST, config.desk.accounts[DEMO_ANALYST].token)
    try:
        for alert in alerts:
            key = alert.key
            message = desk.review(
                key.account_no,
                key.tranpostdt,
                key.tranid,
                ReviewAction.CONFIRM.value,
                note="card testing: tiny online payments seconds apart at a merchant new to her",
                pattern=FraudPattern.CARD_TESTING.value,
            )
            print(f"   {DEMO_ANALYST} confirms {key.tranid} ({', '.join(alert.signals)}): {message}")
    finally:
        desk.close()
    cases = [store.cases.get(transaction_case_id(a.key.account_no, a.key.tranpostdt, a.key.tranid)) for a in alerts]
    return [case for case in cases if case is not None]


#: How the demo trains: on the day's scored transactions, the team's labels taken at once (production waits
#: ``risk.feedback_delay_days`` for them), and a lighter penalty than the default 0.01, which is set for
#: thousands of labels: with the demo's handful among thousands of genuine transactions it would shrink
#: every coefficient until nothing reached the block threshold.
DEMO_TRAINING = ("risk.training_days=1", "risk.feedback_delay_days=0", "risk.regularization=0.001")


def train_demo_model(running: Running, timeout: float = 600) -> RiskModel:
    """Train the risk model on what the job has scored today, as ``fraudshop model train`` does (Spark MLlib,
    spark-submitted), with :data:`DEMO_TRAINING`'s settings. Prints and returns the new model; its log is
    ``<log dir>/demo-training.log``."""
    config = running.config.with_settings(*DEMO_TRAINING)
    log_file = log_dir(config) / "demo-training.log"
    with open(log_file, "ab") as output:
        training = start_job(config, output, script=TRAINING_JOB)
    try:
        with step("training the risk model (spark-submit, about a minute)"):
            code = training.wait(timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the training job did not finish within {timeout:.0f} s: see {log_file}") from None
    finally:
        stop_job(training)
    if code != 0:
        raise RuntimeError(f"the training job ended with exit code {code}: see {log_file}")
    model = ModelStore(running.cassandra, running.keyspace).current()
    assert model is not None
    print_table(
        ("model_version", "transactions", "frauds", "training AUC ROC"),
        [[model.version, model.training_rows, model.training_frauds, round(model.training_auc, 4)]],
    )
    return model


def next_card_test(burst: Sequence[Transaction]) -> Transaction:
    """The fraudster's next payment on Erin's card: like the burst's last, a moment later, not posted yet."""
    last = burst[-1]
    return {**last, "tranid": f"{last['tranid']}-next", "tranpostdt": record_time(datetime.now(UTC))}


def authorize_payment(api: ApiClient, payment: Transaction, model: RiskModel, timeout: float) -> dict[str, Any]:
    """``POST /authorize`` of ``payment``, once the API holds ``model`` (it re-reads the newest model every
    ``authorize.refresh_seconds``: ``timeout`` should allow for it); prints the decision and every reason,
    and returns the answer."""
    body = {name: payment.get(name) for name in TRANSACTION_INPUTS}  # the request's fields

    def decided_with_model() -> bool:
        decided.append(api.authorize(body))
        return bool(decided[-1]["model_version"] == model.version)

    decided: list[dict[str, Any]] = []
    with step("waiting for the API to hold the new model"):
        wait_until(decided_with_model, timeout, "the API to hold the new model", interval=1)
    answer = decided[-1]
    print(
        f"POST /authorize {float(payment['amount']):.2f} at {payment['merchant_id']} on {TESTED_CUSTOMER_ID}'s card: "
        f"{answer['decision'].upper()} (similarity {answer['risk_score']:.3f}, fraud probability "
        f"{answer['fraud_probability']:.3f})",
        flush=True,
    )
    print_table(REASON_COLUMNS, [[reason[name] for name in REASON_COLUMNS] for reason in answer["reasons"]])
    return answer


def run_authorize_chapter(running: Running, api: ApiClient, burst: Sequence[Transaction]) -> dict[str, Any]:
    """The whole chapter, as ``fraudshop demo`` tells it: returns the answer to the next card test."""
    confirm_at_desk(running, burst)
    print("   The risk model learns from them (fraudshop model train):")
    model = train_demo_model(running)
    print("   The fraudster tries the card once more. The bank asks fraudshop before the payment posts:")
    timeout = running.config.authorize.refresh_seconds + 30
    return authorize_payment(api, next_card_test(burst), model, timeout)
