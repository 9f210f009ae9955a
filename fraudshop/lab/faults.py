"""A fault drill: a seeded workload streams through the real job while faults strike (the job
killed or stopped, Kafka or Cassandra restarted), then an exact check that every transaction, every
expected alert and every expected rule hit is stored once, that each hit was notified under one id,
that every malformed record is quarantined, and that no configured secret showed in the job's log or
command lines.

The drill follows the job through what it reports, not its log's wording: the batches in its
progress file (``job.progress_file``) and its exit codes.

The fault tests run drills on the local stack; ``fraudshop faults`` runs one against any
configured stack, in a scratch keyspace and topic of its own.
"""

from __future__ import annotations

import enum
import itertools
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from cassandra import OperationTimedOut
from cassandra.cluster import NoHostAvailable, Session

from fraudshop.config import Config
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.rules import RuleStore
from fraudshop.io.kafka.notification_reader import notification_messages
from fraudshop.io.kafka.producer import checked_sender, send_transactions
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.jobs.launcher import job_processes, signal_job, start_job, stop_job
from fraudshop.lab.bench.progress import read_batches
from fraudshop.lab.console import step
from fraudshop.lab.scratch import stored_rows
from fraudshop.lab.waiting import wait_until
from fraudshop.lab.workload import account_number, synthetic_rules, synthetic_transactions
from fraudshop.model.changes import ProfileChange
from fraudshop.model.rule_evaluation import Hit, Txn, judge_batch
from fraudshop.model.rules import RuleDefinition, RuleKind
from fraudshop.pipeline.resilience import STUCK_BATCH_EXIT_CODE
from fraudshop.pipeline.stream import KAFKA_DATA_LOSS_EXIT_CODE

log = logging.getLogger(__name__)

#: Errors of a read while Cassandra restarts: the drill's own session reconnects by itself.
CASSANDRA_UNAVAILABLE = (NoHostAvailable, OperationTimedOut)


class Fault(enum.StrEnum):
    KILL_JOB = "kill-job"  # kill -9 of the job's whole process group: in client mode, the driver
    STOP_JOB = "stop-job"  # SIGTERM: a graceful stop
    RESTART_KAFKA = "restart-kafka"
    RESTART_CASSANDRA = "restart-cassandra"
    # A node of the lab cluster killed with SIGKILL, brought back once the job has done a batch without it.
    KILL_CASSANDRA_NODE = "kill-cassandra-node"
    KILL_KAFKA_LEADER = "kill-kafka-leader"  # the node leading the topic's first partition
    KILL_SPARK_WORKER = "kill-spark-worker"  # a worker whose executor is running tasks of a batch

    @property
    def server(self) -> str | None:
        return self.value.removeprefix("restart-") if self.value.startswith("restart-") else None

    @property
    def on_a_node(self) -> bool:
        """A fault of the lab cluster's nodes (``fraudshop faults --cluster``)."""
        return self in (Fault.KILL_CASSANDRA_NODE, Fault.KILL_KAFKA_LEADER, Fault.KILL_SPARK_WORKER)

    @property
    def mid_batch(self) -> bool:
        """Strikes while a batch runs: the drill produces the next part of the workload first."""
        return self is Fault.KILL_SPARK_WORKER


#: The lab cluster's node faults, by name.
NODE_FAULTS = frozenset(fault.value for fault in Fault if fault.on_a_node)
#: Restarts a server ("kafka" or "cassandra") and returns once it serves again.
RestartServer = Callable[[str], None]
#: What brings a killed node back; returns figures of its return.
BringBack = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class DrillPlan:
    faults: tuple[Fault, ...]
    transactions: int = 50_000
    accounts: int = 500
    malformed: int = 100
    #: Every n-th account's customer changed their email an hour before the drill.
    changed_every: int = 25
    seed: int = 42
    #: Each fault strikes once the job has reported this many more batches with records.
    batches_before_fault: int = 2
    #: Longest wait for any one step (a start, a batch, the final rows).
    step_timeout_seconds: float = 300
    #: Fraud-prevention rules over the drill's accounts and busiest merchants, every kind in turn.
    rules: int = 120


def stream_rate(progress_file: Path) -> dict[str, Any]:
    """How fast the job went through the drill's records, from its progress file: per second from its
    first batch's start to its last's end (outages and restarts included), and per second of batch time."""
    batches = [batch for batch in read_batches(progress_file) if batch.kafka_records]
    if not batches:
        return {}
    records = sum(batch.kafka_records for batch in batches)
    wall = (max(b.ended_at for b in batches) - min(b.started_at for b in batches)).total_seconds()
    busy = sum(batch.duration_ms.get("triggerExecution", 0.0) for batch in batches) / 1000
    return {
        "batches": len(batches),
        "records": records,
        "first_to_last_batch_seconds": round(wall, 1),
        "records_per_second": round(records / wall, 1) if wall else None,
        "records_per_second_of_batch_time": round(records / busy, 1) if busy else None,
    }


def batches_with_records(progress_file: Path) -> int:
    """Micro-batches with Kafka records the job has reported so far (after their commit), across
    its restarts (each appends to the file)."""
    return sum(1 for batch in read_batches(progress_file) if batch.kafka_records)


def exit_cause(exit_code: int) -> str:
    """Why the job exited, from its exit code: the codes fraudshop's job exits with, or the signal."""
    if exit_code == KAFKA_DATA_LOSS_EXIT_CODE:
        return "kafka data loss"
    if exit_code == STUCK_BATCH_EXIT_CODE:
        return "stuck batch (watchdog)"
    if exit_code == 0:
        return "stopped"
    # Popen reports a signal as -N; a JVM that handled it exits with 128 + N.
    signum = -exit_code if exit_code < 0 else exit_code - 128
    if signum in signal.valid_signals():
        return f"{'killed' if exit_code < 0 else 'stopped'} by {signal.Signals(signum).name}"
    return "the stream failed"


def configured_secrets(config: Config) -> list[str]:
    values = (
        config.cassandra.password,
        config.cassandra.ssl_truststore_password,
        config.kafka.sasl_password,
        config.kafka.ssl_truststore_password,
        config.api.token,
    )
    return [value for value in values if value]


def command_lines_of_group(group: int) -> str:
    """The command lines of every process in a process group (what `ps` shows anyone)."""
    lines = []
    for process in job_processes(group):
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue  # it ended while we looked
    return "\n".join(lines)


class SupervisedJob:
    """The detection job as a cluster manager would run it: restarted whenever it exits. Every
    exit is recorded with its code and what the code means."""

    def __init__(self, config: Config, job_log: Path) -> None:
        self.config = config
        self.job_log = job_log
        self.exits: list[dict[str, Any]] = []
        self.secret_on_command_line = False
        self.last_fault = "none"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.job_log, "ab") as output:
            self._process = start_job(self.config, output)
        time.sleep(1)  # spark-submit has launched its JVM by now: check what `ps` shows of it
        self._check_command_lines()

    @property
    def group(self) -> int:
        """The process group of the running job (its spark-submit's pid)."""
        assert self._process is not None
        return self._process.pid

    def signal(self, signum: int) -> None:
        assert self._process is not None
        signal_job(self._process.pid, signum)
        self._record_exit(self._process.wait(timeout=120), after=self.last_fault)
        self.start()

    def keep_running(self) -> None:
        """Restart the job if it exited on its own (e.g. the stuck-batch watchdog)."""
        assert self._process is not None
        if self._process.poll() is not None:
            self._record_exit(self._process.returncode, after=self.last_fault)
            self.start()
        else:
            self._check_command_lines()  # the Python driver, started later than the JVM, included

    def stop(self) -> None:
        if self._process is not None:
            stop_job(self._process)

    def _check_command_lines(self) -> None:
        assert self._process is not None
        command_lines = command_lines_of_group(self._process.pid)
        self.secret_on_command_line |= any(secret in command_lines for secret in configured_secrets(self.config))

    def _record_exit(self, code: int, after: str) -> None:
        cause = exit_cause(code)
        self.exits.append({"after": after, "exit_code": code, "cause": cause})
        log.info("the job exited with code %d (%s) after %s", code, cause, after)


@dataclass(frozen=True)
class NodeKilled:
    """A node of the lab cluster killed for a fault: figures of the kill, when it struck (monotonic
    time; a mid-batch fault waits for a batch before it strikes), the batches with records the job
    had completed just before (the next one completes after the kill) and what brings the node back."""

    figures: dict[str, Any]
    at: float
    batches_before: int
    bring_back: BringBack


#: Kills a node of the lab cluster for a fault while the job runs.
KillNode = Callable[[Fault, SupervisedJob], NodeKilled]
#: Checks made once every row is stored, given the expected (account_no, tranid) pairs: figures, and
#: whether they pass.
FinalCheck = Callable[[set[tuple[str, str]]], tuple[dict[str, Any], bool]]


def restart_local_server(config: Config) -> RestartServer:
    """Restart a server of the embedded local stack."""
    from fraudshop.lab.stack.cassandra import cassandra_server
    from fraudshop.lab.stack.kafka import kafka_server
    from fraudshop.lab.stack.process import ServerProcess

    servers: dict[str, Callable[[Config], ServerProcess]] = {"cassandra": cassandra_server, "kafka": kafka_server}

    def restart(name: str) -> None:
        server = servers[name](config)
        server.stop()
        server.start(config.stack.start_timeout_seconds)

    return restart


def restart_with_commands(commands: Mapping[str, str]) -> RestartServer:
    """Restart servers of your own stack with your commands (``systemctl restart kafka``, ...)."""

    def restart(name: str) -> None:
        if name not in commands:
            raise ValueError(f"no restart command for {name}: pass --restart-command {name}=COMMAND")
        subprocess.run(commands[name], shell=True, check=True)

    return restart


def drill_rules(plan: DrillPlan) -> list[RuleDefinition]:
    """``plan.rules`` rules, every kind in turn, over the drill's accounts and busiest merchants."""
    return synthetic_rules(plan.rules, plan.accounts, plan.seed)


def _hit_key(hit: Hit) -> tuple[str, ...]:
    """What identifies a hit whatever the batching: the rule and the transaction, or for a daily count the
    rule, merchant and day (which transaction took the count over depends on arrival across partitions)."""
    if hit.kind == RuleKind.MERCHANT_DAILY_COUNT.value:
        return (hit.rule_id, str(hit.merchant_id), hit.day.isoformat())
    return (hit.rule_id, hit.account_no, hit.tranid)


def _stored_hit_keys(session: Session, keyspace: str) -> tuple[set[tuple[str, ...]], int, set[str]]:
    """The hits stored (by merchant-day: every drill transaction has a merchant), the rows holding them and
    their ids."""
    columns = "rule_id, kind, merchant_id, day, account_no, tranid, hit_id"
    rows = list(session.execute(f"SELECT {columns} FROM {keyspace}.rule_hit_by_merchant_day"))
    keys: set[tuple[str, ...]] = set()
    for row in rows:
        if row.kind == RuleKind.MERCHANT_DAILY_COUNT.value:
            keys.add((str(row.rule_id), row.merchant_id, row.day.date().isoformat()))
        else:
            keys.add((str(row.rule_id), row.account_no, row.tranid))
    return keys, len(rows), {row.hit_id for row in rows}


def _chunks(items: list[Any], count: int) -> list[list[Any]]:
    size = -(-len(items) // count)
    return [items[i * size : (i + 1) * size] for i in range(count)]


def run_drill(
    config: Config,
    plan: DrillPlan,
    session: Session,
    workdir: Path,
    restart_server: RestartServer,
    kill_node: KillNode | None = None,
    final_check: FinalCheck | None = None,
) -> dict[str, Any]:
    """Run ``plan`` against ``config``'s Kafka topic and Cassandra keyspace (both assumed to be
    the drill's own, the schema applied); return the figures, which say whether it passed. The
    drill follows the job's batches in ``config.job.progress_file``, which must be set. The lab
    cluster's faults need ``kill_node``; ``final_check`` adds checks once every row is stored."""
    if kill_node is None and any(fault.on_a_node for fault in plan.faults):
        raise ValueError("killing a node of the cluster needs the lab cluster: fraudshop faults --cluster")
    if not config.job.progress_file:
        raise ValueError("the fault drill follows the job's batches in its progress file: set job.progress_file")
    progress_file = Path(config.job.progress_file).expanduser()
    progress_file.unlink(missing_ok=True)  # a work directory used before: its batches are not this drill's
    keyspace = config.cassandra.keyspace
    now = datetime.now(UTC)
    changed = {account_number(i): f"CUST-{i}" for i in range(0, plan.accounts, plan.changed_every)}
    for account, customer in changed.items():
        record_profile_change(session, keyspace, ProfileChange(account, customer, "email", now - timedelta(hours=1)))
    # Posted a millisecond apart in the order produced: an account's records reach the job in event-time
    # order (one partition each), so the hits are those of the whole workload judged at once.
    first_posted = now - timedelta(milliseconds=plan.transactions)
    moments = (first_posted + timedelta(milliseconds=i) for i in itertools.count())
    workload = list(
        itertools.islice(
            synthetic_transactions(plan.accounts, seed=plan.seed, clock=lambda: next(moments)), plan.transactions
        )
    )
    rule_store = RuleStore(session, keyspace)
    rules = [rule_store.add(definition, now - timedelta(hours=1)) for definition in drill_rules(plan)]
    expected_hits = {_hit_key(hit) for hit in judge_batch([_as_txn(t) for t in workload], {}, rules, {}, set())}
    malformed = [f"malformed record {i}".encode() for i in range(plan.malformed)]
    expected_transactions = {(t["account_no"], t["tranid"]) for t in workload}
    expected_alerts = {(changed[t["account_no"]], t["tranid"]) for t in workload if t["account_no"] in changed}

    # One chunk before each fault and one after the last: each fault lands mid-stream, and what is
    # produced after a restart shows the pipeline recovered.
    chunks = _chunks(workload, len(plan.faults) + 1)
    malformed_chunks = _chunks(malformed, len(plan.faults) + 1)
    ensure_topic(config.kafka)
    job_log = workdir / "job.log"
    job = SupervisedJob(config, job_log)
    pending_bring_back: BringBack | None = None
    started = time.monotonic()
    recoveries: list[dict[str, Any]] = []
    timeout = plan.step_timeout_seconds
    try:
        with step("producing the first part of the workload, starting the job"):
            _produce(config, chunks[0], malformed_chunks[0])
            job.start()
        batches_at_fault = batches_with_records(progress_file)
        for index, fault in enumerate(plan.faults, start=1):
            with step(f"fault {index} of {len(plan.faults)} ({fault}): waiting for micro-batches") as shown:
                wanted_batches = batches_at_fault + plan.batches_before_fault
                mid_stream = partial(_job_did_more_batches, job, progress_file, wanted_batches)
                wait_until(mid_stream, timeout, f"micro-batches before fault {index} ({fault})")
                log.info("fault %d of %d: %s", index, len(plan.faults), fault)
                shown.update(f"fault {index} of {len(plan.faults)} ({fault}): striking")
                if fault.mid_batch:  # the batch the fault strikes is this part's
                    _produce(config, chunks[index], malformed_chunks[index])
                batches_at_fault = batches_with_records(progress_file)
                struck = time.monotonic()
                recovery: dict[str, Any] = {"fault": str(fault)}
                bring_back: BringBack | None = None
                job.last_fault = str(fault)
                if fault.on_a_node:  # timed by its killer (a mid-batch fault waits for a batch first)
                    assert kill_node is not None
                    killed = kill_node(fault, job)
                    struck, bring_back, batches_at_fault = killed.at, killed.bring_back, killed.batches_before
                    pending_bring_back = bring_back
                    recovery.update(killed.figures)
                elif fault.server:
                    with _timed(recovery, "server_down_and_restart_seconds"):
                        restart_server(fault.server)
                else:
                    with _timed(recovery, "job_stop_seconds"):
                        job.signal(signal.SIGKILL if fault is Fault.KILL_JOB else signal.SIGTERM)
                # Produced after the fault: the pipeline has recovered once these are processed.
                shown.update(f"fault {index} of {len(plan.faults)} ({fault}): waiting for the job to recover")
                if not fault.mid_batch:
                    _produce(config, chunks[index], malformed_chunks[index])
                recovered = partial(_job_did_more_batches, job, progress_file, batches_at_fault)
                wait_until(recovered, timeout, f"a micro-batch after fault {index} ({fault})")
                recovery["seconds_to_next_batch"] = round(time.monotonic() - struck, 1)
                if bring_back is not None:
                    shown.update(f"fault {index} of {len(plan.faults)} ({fault}): bringing the node back")
                    recovery.update(bring_back())
                    pending_bring_back = None  # only once back: a failed return is tried again on the way out
                # The next fault counts its batches from this one's: what was produced may be processed by
                # now (a node's return takes a while), and nothing more comes before that fault.
                recoveries.append(recovery)
                shown.update(f"fault {index} of {len(plan.faults)} ({fault}): recovered")

        wanted = {
            ("transaction", "account_no, tranid"): len(expected_transactions),
            ("transaction_rejects", "reason, source_offset"): len(malformed),
            ("cust_fraud", "customer_id, tranid"): len(expected_alerts),
        }

        def all_stored() -> bool:
            job.keep_running()
            stored = all(len(stored_rows(session, keyspace, *table)) >= count for table, count in wanted.items())
            return stored and len(_stored_hit_keys(session, keyspace)[0]) >= len(expected_hits)

        with step("waiting for every row to be stored"):
            wait_until(all_stored, timeout, "every row", interval=3, unavailable=CASSANDRA_UNAVAILABLE)
    finally:
        job.stop()
        if pending_bring_back is not None:  # the drill failed with a node down: the next one finds it up
            try:
                pending_bring_back()
            except Exception:
                log.exception("could not bring the killed node back; fraudshop cluster up starts it")
    elapsed = time.monotonic() - started

    transactions = stored_rows(session, keyspace, "transaction", "account_no, tranid")
    alerts = stored_rows(session, keyspace, "cust_fraud", "customer_id, tranid")
    alert_rows = len(list(session.execute(f"SELECT tranid FROM {keyspace}.cust_fraud")))
    rejects = len(stored_rows(session, keyspace, "transaction_rejects", "reason, source_offset"))
    hits, hit_rows, hit_ids = _stored_hit_keys(session, keyspace)
    messages = list(notification_messages(config.kafka, follow=False, from_beginning=True))
    notified = {str(message.get("id")) for message in messages}
    job_text = job_log.read_text(errors="replace")
    figures = {
        "faults": [str(fault) for fault in plan.faults],
        "transactions_produced": len(workload),
        "malformed_injected": len(malformed),
        "transactions_lost": len(expected_transactions - transactions),
        "transactions_extra": len(transactions - expected_transactions),
        "alerts_expected": len(expected_alerts),
        "alerts_lost": len(expected_alerts - alerts),
        "alerts_extra": len(alerts - expected_alerts),
        "alert_rows_duplicated": alert_rows - len(alerts),
        "rejects_stored": rejects,
        "rules": len(rules),
        "hits_expected": len(expected_hits),
        "hits_lost": len(expected_hits - hits),
        "hits_extra": len(hits - expected_hits),
        "hit_rows_duplicated": hit_rows - len(hits),
        "hits_not_notified": len(hit_ids - notified),
        "notifications_without_hit": len(notified - hit_ids),
        # Repeats of an id are at-least-once delivery after a fault: consumers drop them by id.
        "notification_repeats": len(messages) - len(notified),
        "recoveries": recoveries,
        "job_exits": job.exits,
        # A node of a ring lost must not stop the job: it keeps going on the others.
        "job_exits_after_node_faults": sum(1 for e in job.exits if e["after"] in NODE_FAULTS),
        "secret_in_job_log": any(secret in job_text for secret in configured_secrets(config)),
        "secret_on_command_line": job.secret_on_command_line,
        "seconds": round(elapsed, 1),
        "stream_rate": stream_rate(progress_file),
    }
    final_passed = True
    if final_check is not None:
        with step("checking the replicas"):
            final_figures, final_passed = final_check(expected_transactions)
        figures.update(final_figures)
    figures["passed"] = (
        figures["transactions_lost"] == figures["transactions_extra"] == 0
        and figures["alerts_lost"] == figures["alerts_extra"] == figures["alert_rows_duplicated"] == 0
        and rejects == len(malformed)
        and figures["hits_lost"] == figures["hits_extra"] == figures["hit_rows_duplicated"] == 0
        and figures["hits_not_notified"] == figures["notifications_without_hit"] == 0
        and not figures["secret_in_job_log"]
        and not figures["secret_on_command_line"]
        and figures["job_exits_after_node_faults"] == 0
        and final_passed
    )
    return figures


def _job_did_more_batches(job: SupervisedJob, progress_file: Path, count: int) -> bool:
    job.keep_running()
    return batches_with_records(progress_file) > count


def _as_txn(transaction: dict[str, Any]) -> Txn:
    posted = datetime.fromisoformat(str(transaction["tranpostdt"]).replace("Z", "+00:00"))
    return Txn(
        transaction["account_no"],
        posted,
        transaction["tranid"],
        float(transaction["amount"]),
        transaction.get("merchant_id"),
        transaction.get("merchant_category"),
    )


def _produce(config: Config, transactions: list[Any], malformed: list[bytes]) -> None:
    """Send the transactions and the malformed records; raises if the broker did not take every one."""
    if transactions:
        send_transactions(config.kafka, transactions, rate=0)
    if malformed:
        with checked_sender(config.kafka) as sender:
            for value in malformed:
                sender.send(value)


@contextmanager
def _timed(figures: dict[str, Any], name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    figures[name] = round(time.monotonic() - started, 1)


#: What ``fraudshop faults`` runs unless told otherwise: the job crash drill of the fault tests.
DEFAULT_FAULTS = (Fault.KILL_JOB, Fault.KILL_JOB, Fault.KILL_JOB, Fault.STOP_JOB)


def parse_restart_commands(assignments: list[str]) -> dict[str, str]:
    """``kafka=COMMAND`` / ``cassandra=COMMAND`` pairs."""
    commands = {}
    for assignment in assignments:
        server, sep, command = assignment.partition("=")
        if not sep or server not in ("kafka", "cassandra") or not command.strip():
            raise ValueError(f"--restart-command expects kafka=COMMAND or cassandra=COMMAND, got {assignment!r}")
        commands[server] = command
    return commands


def run_drill_in_scratch(
    config: Config, plan: DrillPlan, restart_commands: Mapping[str, str], work_dir: Path, keep: bool = False
) -> dict[str, Any]:
    """Run ``plan`` in a scratch keyspace and topic of ``config``'s stack. Servers restart with
    ``restart_commands``, or, without them, as servers of the embedded local stack."""
    from fraudshop.lab.scratch import scratch_space
    from fraudshop.lab.stack import stack_is_running

    servers = {fault.server for fault in plan.faults if fault.server}
    if servers - set(restart_commands) and not stack_is_running(config):
        missing = ", ".join(sorted(servers - set(restart_commands)))
        raise ValueError(f"restarting {missing} of a stack that is not fraudshop's local one needs --restart-command")
    # Several micro-batches per chunk of the workload, so every fault lands mid-stream.
    per_trigger = max(1, plan.transactions // (4 * (len(plan.faults) + 1)))
    if not 0 < config.kafka.max_offsets_per_trigger <= per_trigger:
        config = config.with_settings(f"kafka.max_offsets_per_trigger={per_trigger}")
    restart = restart_with_commands(restart_commands) if restart_commands else restart_local_server(config)
    with scratch_space(config, "fault_drill", work_dir, keep=keep) as (scratch, session):
        return run_drill(scratch, plan, session, work_dir, restart)
