"""The ``fraudshop`` command."""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fraudshop.bench.plan import add_bench_arguments
from fraudshop.cli_args import add_config_arguments, load_config_from_args
from fraudshop.config import Config, ConfigError
from fraudshop.logs import configure_logging

log = logging.getLogger("fraudshop")
REPO = Path(__file__).resolve().parent.parent


def _stack(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.stack import stack_down, stack_status, stack_up

    if args.action == "up":
        for name, seconds in stack_up(config).items():
            print(f"{name}: ready" + (f" after {seconds:.1f} s" if seconds else " (was already running)"))
    elif args.action == "down":
        stack_down(config)
    for line in stack_status(config):
        print(line)
    return 0


def _schema(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.cassandra_client import cassandra_session
    from fraudshop.schema import apply_schema

    with cassandra_session(config.cassandra) as session:
        apply_schema(session, config.cassandra)
    return 0


def _job(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.job_launcher import job_command, run_job

    if args.print:
        print(shlex.join(job_command(config)))
        return 0
    return run_job(config)


def _produce(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.producer import csv_transactions, ensure_topic, send_transactions, synthetic_transactions

    ensure_topic(config.kafka)
    transactions = (
        csv_transactions(args.csv, restamp=not args.keep_time)
        if args.csv
        else synthetic_transactions(args.accounts, seed=args.seed)
    )
    send_transactions(
        config.kafka,
        transactions,
        rate=args.rate,
        limit=args.count,
        duration=timedelta(seconds=args.duration) if args.duration else None,
        record_format=args.format,
    )
    return 0


def _change(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.cassandra_client import cassandra_session
    from fraudshop.profile_changes import ProfileChange, record_profile_change

    changed_at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    change = ProfileChange(args.account, args.customer, args.type, changed_at)
    with cassandra_session(config.cassandra) as session:
        record_profile_change(session, config.cassandra.keyspace, change)
    print(
        f"recorded {change.change_type} change of customer {change.customer_id} on account {change.account_no} "
        f"at {change.last_updated.isoformat()}"
    )
    return 0


def _api(config: Config, args: argparse.Namespace) -> int:
    import uvicorn

    from fraudshop.api import create_app

    uvicorn.run(create_app(config), host=config.api.host, port=config.api.port, log_level="info")
    return 0


def _alerts(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.alerts import ALERT_FIELDS, alerts_of_customer, alerts_of_day
    from fraudshop.cassandra_client import cassandra_session

    with cassandra_session(config.cassandra) as session:
        keyspace = config.cassandra.keyspace
        page = (
            alerts_of_customer(session, keyspace, args.customer, args.limit)
            if args.customer
            else alerts_of_day(session, keyspace, date.fromisoformat(args.day), args.limit)
        )
    columns = ALERT_FIELDS[:8]
    print(format_table(columns, [[row[c] for c in columns] for row in page.rows]))
    print(f"{len(page.rows)} alert(s)" + (" (more: raise --limit)" if page.next_page else ""))
    return 0


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, one line per row, columns aligned."""

    def text(value: object) -> str:
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        if isinstance(value, float):
            return f"{value:.2f}"
        return "" if value is None else str(value)

    cells = [list(columns), *[[text(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _rejects(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.cassandra_client import cassandra_session
    from fraudshop.rejects import count_rejects, list_rejects, replay_rejects

    with cassandra_session(config.cassandra) as session:
        keyspace = config.cassandra.keyspace
        if args.action == "replay":
            if not args.reason:
                print("fraudshop: rejects replay needs --reason", file=sys.stderr)
                return 2
            print(f"replayed {replay_rejects(config, session, args.reason, args.limit)} record(s)")
        elif args.reason:
            columns = ("source_partition", "source_offset", "rejected_at", "detail", "raw_value")
            rows = list_rejects(session, keyspace, args.reason, args.limit)
            print(format_table(columns, [[str(row[c])[:60] for c in columns] for row in rows]))
        else:
            counts = {reason: count for reason, count in count_rejects(session, keyspace).items() if count}
            print(format_table(("reason", "records"), list(counts.items())))
    return 0


def _demo(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.demo import run_demo

    run_demo(config, duration=timedelta(seconds=args.duration), rate=args.rate, accounts=args.accounts)
    return 0


def _faults(config: Config, args: argparse.Namespace) -> int:
    import json

    from fraudshop.fault_drill import DEFAULT_FAULTS, DrillPlan, Fault, parse_restart_commands, run_drill_in_scratch

    plan = DrillPlan(
        faults=tuple(Fault(name) for name in args.fault) if args.fault else DEFAULT_FAULTS,
        transactions=args.transactions,
        accounts=args.accounts,
        malformed=args.malformed,
    )
    work_dir = args.work_dir or config.stack.state_dir / "fault-drills" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        figures = run_drill_in_scratch(config, plan, parse_restart_commands(args.restart_command), work_dir, args.keep)
    except ValueError as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(figures, indent=2) + "\n")
    rows = [
        [r["fault"], r.get("server_down_and_restart_seconds", ""), r["seconds_to_next_batch"]]
        for r in figures["recoveries"]
    ]
    print(format_table(("fault", "server down (s)", "fault to next batch (s)"), rows))
    counted = "transactions_produced malformed_injected transactions_lost transactions_extra alerts_expected"
    counted += " alerts_lost alerts_extra alert_rows_duplicated rejects_stored"
    print(", ".join(f"{name} {figures[name]}" for name in counted.split()))
    secrets_seen = figures["secret_in_job_log"] or figures["secret_on_command_line"]
    print(f"job exits: {len(figures['job_exits'])}; a secret seen in the job's log or command line: {secrets_seen}")
    print(("PASSED" if figures["passed"] else "FAILED") + f"; figures in {args.results}, job log in {work_dir}")
    return 0 if figures["passed"] else 1


def _bench(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.bench.plan import plan_from_args
    from fraudshop.bench.run import run_bench
    from fraudshop.stack import stack_up

    stack_up(config)
    result = run_bench(config, plan_from_args(args), args.output)
    for name, figures in result["systems"].items():
        latency = figures["latency_s"]
        print(
            f"{name}: sustained {figures['sustained_throughput_tps']:.0f} txn/s, "
            f"capacity {figures['capacity_tps']:.0f} txn/s, event→alert p50/p95/p99 "
            f"{latency['p50']}/{latency['p95']}/{latency['p99']} s at {result['plan']['latency_rate']:.0f} txn/s, "
            f"correct: {figures['correctness']['passed']}"
        )
    print(f"results: {args.output / 'bench.json'}, {args.output / 'bench.png'}")
    return 0 if result["correctness_passed"] else 1


def _test(config: Config, args: argparse.Namespace) -> int:
    """Lint, type-check and run the whole test suite (the integration tests start the local stack)."""
    python = sys.executable
    steps = [
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "mypy"],
        [python, "-m", "pytest", *args.pytest_args],
    ]
    for step in steps:
        log.info("running %s", shlex.join(step[2:]))
        code = subprocess.call(step, cwd=REPO)
        if code != 0:
            return code
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudshop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[Config, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
        add_config_arguments(sub)
        sub.set_defaults(handler=handler)
        return sub

    stack = command("stack", _stack, "start, stop or inspect the embedded local Kafka + Cassandra")
    stack.add_argument("action", choices=["up", "down", "status"])

    schema = command("schema", _schema, "create the keyspace and tables (idempotent)")
    schema.add_argument("action", choices=["apply"])

    job = command("job", _job, "run the detection job with spark-submit")
    job.add_argument("--print", action="store_true", help="print the spark-submit command instead of running it")

    produce = command("produce", _produce, "send transactions to Kafka: synthetic, or replay a CSV")
    produce.add_argument("--rate", type=float, default=20.0, help="transactions per second (0 = as fast as possible)")
    produce.add_argument("--accounts", type=int, default=100, help="number of synthetic accounts")
    produce.add_argument("--count", type=int, help="stop after this many transactions")
    produce.add_argument("--duration", type=float, help="stop after this many seconds")
    produce.add_argument("--seed", type=int, default=0, help="random seed of the synthetic workload")
    produce.add_argument("--format", choices=["json", "legacy"], default="json", help="record format on the topic")
    produce.add_argument("--csv", type=Path, help="replay this CSV instead of generating transactions")
    produce.add_argument("--keep-time", action="store_true", help="keep the CSV's tranpostdt instead of 'now'")

    change = command("change", _change, "record a customer profile change in cust_change")
    change.add_argument("--account", required=True)
    change.add_argument("--customer", required=True)
    change.add_argument("--type", required=True, choices=["email", "phone", "address", "other"])
    change.add_argument("--at", help="ISO-8601 time of the change (default: now; naive = UTC)")

    command("api", _api, "serve the profile-change and alerts HTTP API (OpenAPI docs at /docs)")

    alerts = command("alerts", _alerts, "print flagged transactions of a customer or of a day")
    which = alerts.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", help="customer_id")
    which.add_argument("--day", help="UTC day, YYYY-MM-DD")
    alerts.add_argument("--limit", type=int, default=50, help="at most this many rows, newest first")

    rejects = command("rejects", _rejects, "list quarantined records by reason, or replay them after a fix")
    rejects.add_argument("action", choices=["list", "replay"])
    rejects.add_argument("--reason", help="a reason code (list: show its records; replay: required)")
    rejects.add_argument("--limit", type=int, default=100, help="at most this many records")

    demo = command("demo", _demo, "the live demo on the local stack: stream, profile changes, alerts")
    demo.add_argument("--duration", type=float, default=150.0, help="seconds of streaming after the job is up")
    demo.add_argument("--rate", type=float, default=25.0, help="transactions per second")
    demo.add_argument("--accounts", type=int, default=40, help="number of synthetic accounts")

    faults = command(
        "faults",
        _faults,
        "fault drill on the configured stack: kill or stop the job, restart Kafka or Cassandra mid-stream, "
        "then check every row is stored exactly once (in a scratch keyspace and topic)",
    )
    faults.add_argument(
        "--fault",
        action="append",
        choices=["kill-job", "stop-job", "restart-kafka", "restart-cassandra"],
        help="a fault to inject, in order; repeatable (default: kill-job three times, then stop-job)",
    )
    faults.add_argument("--transactions", type=int, default=50_000, help="transactions in the workload")
    faults.add_argument("--accounts", type=int, default=500, help="accounts they spread over")
    faults.add_argument("--malformed", type=int, default=100, help="malformed records injected among them")
    faults.add_argument(
        "--restart-command",
        action="append",
        default=[],
        metavar="SERVER=COMMAND",
        help="how to restart kafka or cassandra of your own stack, e.g. cassandra='ssh db1 sudo systemctl restart "
        "cassandra' (default: fraudshop restarts its local stack's server)",
    )
    faults.add_argument("--results", type=Path, default=Path("results/fault-drill.json"), help="figures (JSON)")
    faults.add_argument("--work-dir", type=Path, help="job log and checkpoint (default: under stack.state_dir)")
    faults.add_argument("--keep", action="store_true", help="keep the scratch keyspace and topic afterwards")

    add_bench_arguments(
        command("bench", _bench, "throughput and event→alert latency, fraudshop vs the original design")
    )

    command("test", _test, "lint, type-check and run the whole test suite; other arguments go to pytest")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    configure_logging()
    try:
        config = load_config_from_args(args)
    except ConfigError as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2
    handler: Callable[[Config, argparse.Namespace], int] = args.handler
    return handler(config, args)


if __name__ == "__main__":
    sys.exit(main())
