"""The lab commands: ``fraudshop demo``, ``faults`` (the fault drill), ``bench`` and ``slides``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import CONFIG_FILE_ENV, Config, load_config
from fraudshop.lab.bench.plan import add_bench_arguments
from fraudshop.lab.stack.conf import CLUSTER_CONFIG

#: The fault drill's figures printed after its table, in this order.
_DRILL_COUNTS = (
    "transactions_produced",
    "malformed_injected",
    "transactions_lost",
    "transactions_extra",
    "alerts_expected",
    "alerts_lost",
    "alerts_extra",
    "alert_rows_duplicated",
    "rejects_stored",
    "rules",
    "hits_expected",
    "hits_lost",
    "hits_extra",
    "hit_rows_duplicated",
    "hits_not_notified",
    "notifications_without_hit",
    "notification_repeats",
)


def demo(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.story import run_demo

    run_demo(config, duration=timedelta(seconds=args.duration), rate=args.rate, accounts=args.accounts)
    return 0


def faults(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.cluster_drill import CLUSTER_FAULTS, run_cluster_drill
    from fraudshop.lab.console import print_table
    from fraudshop.lab.faults import DEFAULT_FAULTS, DrillPlan, Fault, parse_restart_commands, run_drill_in_scratch
    from fraudshop.lab.stack.cluster import shared_directory

    if args.cluster and args.config is None and not os.environ.get(CONFIG_FILE_ENV):
        config = load_config(path=CLUSTER_CONFIG, overrides=args.overrides)
    if args.no_faults:
        chosen: tuple[Fault, ...] = ()
    elif args.fault:
        chosen = tuple(Fault(name) for name in args.fault)
    else:
        chosen = CLUSTER_FAULTS if args.cluster else DEFAULT_FAULTS
    plan = DrillPlan(
        faults=chosen,
        transactions=args.transactions,
        accounts=args.accounts,
        malformed=args.malformed,
    )
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        if args.cluster:
            # In the shared directory: the job's checkpoint must be where every node reaches it.
            work_dir = args.work_dir or shared_directory(config) / "fault-drills" / started
            figures = run_cluster_drill(config, plan, work_dir, args.keep)
        else:
            work_dir = args.work_dir or config.stack.state_dir / "fault-drills" / started
            restarts = parse_restart_commands(args.restart_command)
            figures = run_drill_in_scratch(config, plan, restarts, work_dir, args.keep)
    except ValueError as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(figures, indent=2) + "\n")
    rows = [
        [
            r["fault"],
            r.get("node", ""),
            r.get("server_down_and_restart_seconds"),
            r["seconds_to_next_batch"],
            r.get("node_restart_seconds"),
        ]
        for r in figures["recoveries"]
    ]
    print_table(("fault", "node", "server down (s)", "fault to next batch (s)", "node restart (s)"), rows)
    print(", ".join(f"{name} {figures[name]}" for name in _DRILL_COUNTS))
    secrets_seen = figures["secret_in_job_log"] or figures["secret_on_command_line"]
    print(f"job exits: {len(figures['job_exits'])}; a secret seen in the job's log or command line: {secrets_seen}")
    if rate := figures["stream_rate"]:
        print(
            f"the stream: {rate['records']} records in {rate['batches']} batches, {rate['records_per_second']}/s from"
            f" the first batch's start to the last's end, {rate['records_per_second_of_batch_time']}/s of batch time"
        )
    print(("PASSED" if figures["passed"] else "FAILED") + f"; figures in {args.results}, job log in {work_dir}")
    return 0 if figures["passed"] else 1


def bench_authorize(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.bench.authorize import authorize_plan, run_authorize_bench
    from fraudshop.lab.bench.publish import write_authorize_figures
    from fraudshop.lab.console import print_table

    result = run_authorize_bench(config, authorize_plan(args), args.output)
    phases = (
        ("POST /authorize", result),
        ("GET /health", result["health_floor"]),
        ("POST /authorize", result["light"]),
    )
    rows = [
        [
            f"{route} at {phase['offered_per_s']:g}/s",
            phase["reached_per_s"],
            *phase["latency_ms"].values(),
            *(phase["cpu_ms_per_request"][part] for part in ("api", "cassandra", "load generator")),
            f"{phase['cores_busy']:g} of {phase['cores']}",
        ]
        for route, phase in phases
    ]
    print_table(
        (
            "route", "reached/s", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms",
            "CPU ms/req: API", "Cassandra", "load generator", "cores busy",
        ),
        rows,
    )  # fmt: skip
    target = result["target"]
    print(
        f"decisions {result['decisions']}; statuses {result['statuses']}; target p99 {target['p99_ms']} ms: "
        f"{'met' if target['met'] else 'missed'} ({target['value']} ms); figures in {args.output / 'authorize.json'}"
    )
    if args.write_benchmarks is not None:
        write_authorize_figures(args.write_benchmarks, result)
        print(f"written to {args.write_benchmarks / 'latest.json'} under 'authorize'")
    return 0


def _percentiles(latency: dict[str, float | None] | None) -> str | None:
    return "/".join(str(latency[q]) for q in ("p50", "p95", "p99")) if latency else None


def bench(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.bench.publish import update_benchmark_page

    if args.authorize:
        return bench_authorize(config, args)

    if args.update_readme and args.write_benchmarks is None:
        # Only the docs' benchmark table, from the committed figures: no run.
        update_benchmark_page(args.benchmark_page, Path("benchmarks") / "latest.json")
        print(f"{args.benchmark_page}: benchmark table rewritten from benchmarks/latest.json")
        return 0

    from fraudshop.lab.bench.figures import HEADLINE_KEYS, LATENCY
    from fraudshop.lab.bench.plan import plan_from_args
    from fraudshop.lab.bench.publish import write_benchmarks
    from fraudshop.lab.bench.run import run_bench
    from fraudshop.lab.console import print_table
    from fraudshop.lab.stack import stack_up

    stack_up(config)
    result = run_bench(config, plan_from_args(args), args.output)
    baseline = result["baseline"] or {}
    rows: list[list[object]] = []
    for key in HEADLINE_KEYS:
        if key == LATENCY:
            for rate, ours in (result[key] or {}).items():
                theirs = (baseline.get(key) or {}).get(rate)
                rows.append([f"{key} at {rate} txn/s, p50/p95/p99", _percentiles(ours), _percentiles(theirs)])
        else:
            rows.append([key, result[key], baseline.get(key)])
    print_table(("figure", "fraudshop", "baseline"), rows)
    print_table(
        ("target", "bound", "value", "met"),
        [[name, target["target"], target["value"], target["met"]] for name, target in result["targets"].items()],
    )
    print(
        f"correct: {result['correctness_passed']}; results: {args.output / 'bench.json'}, {args.output / 'bench.png'}"
    )
    if args.write_benchmarks is not None:
        write_benchmarks(args.output, args.write_benchmarks, result)
        print(f"written to {args.write_benchmarks}: latest.json, latest.png, history.jsonl")
        if args.update_readme:
            update_benchmark_page(args.benchmark_page, args.write_benchmarks / "latest.json")
            print(f"{args.benchmark_page}: benchmark table rewritten")
    return 0 if result["correctness_passed"] else 1


def slides(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.slides import REVEAL_VERSION, NotebookError, SlidesError, build_slides

    try:
        html = build_slides(args.notebook, args.output, config.stack.cache_dir)
    except SlidesError as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2 if isinstance(error, NotebookError) else 1
    print(f"{html}: open it in a browser, no network needed (reveal.js {REVEAL_VERSION} beside it, MIT licence)")
    return 0


def register(commands: Commands) -> None:
    demo_parser = add_command(
        commands, "demo", demo, "the live demo on the local stack: stream, profile changes, alerts"
    )
    demo_parser.add_argument("--duration", type=float, default=150.0, help="seconds of streaming after the job is up")
    demo_parser.add_argument("--rate", type=float, default=25.0, help="transactions per second")
    demo_parser.add_argument("--accounts", type=int, default=40, help="number of synthetic accounts")

    drill = add_command(
        commands,
        "faults",
        faults,
        "fault drill on the configured stack: kill or stop the job, restart Kafka or Cassandra mid-stream, "
        "then check every row is stored exactly once (in a scratch keyspace and topic); --cluster: on the lab cluster",
    )
    drill.add_argument(
        "--fault",
        action="append",
        # Fault's values, listed here so that the parser needs no driver import (a unit test keeps them equal).
        choices=[
            "kill-job",
            "stop-job",
            "restart-kafka",
            "restart-cassandra",
            "kill-cassandra-node",
            "kill-kafka-leader",
            "kill-spark-worker",
        ],
        help="a fault to inject, in order; repeatable (default: kill-job three times, then stop-job; with --cluster"
        " kill-cassandra-node, kill-kafka-leader, kill-spark-worker, kill-job); kill-… faults of a node need --cluster",
    )
    drill.add_argument(
        "--no-faults",
        action="store_true",
        help="no fault: the workload straight through, checked the same (the stream's rate without faults)",
    )
    drill.add_argument(
        "--cluster",
        action="store_true",
        help="run on the lab cluster (fraudshop cluster up; its config unless --config names another): a node of"
        " each engine killed with SIGKILL mid-stream and brought back, then the driver; checks every replica",
    )
    drill.add_argument("--transactions", type=int, default=50_000, help="transactions in the workload")
    drill.add_argument("--accounts", type=int, default=500, help="accounts they spread over")
    drill.add_argument("--malformed", type=int, default=100, help="malformed records injected among them")
    drill.add_argument(
        "--restart-command",
        action="append",
        default=[],
        metavar="SERVER=COMMAND",
        help="how to restart kafka or cassandra of your own stack, e.g. cassandra='ssh db1 sudo systemctl restart "
        "cassandra' (default: fraudshop restarts its local stack's server)",
    )
    drill.add_argument("--results", type=Path, default=Path("results/fault-drill.json"), help="figures (JSON)")
    drill.add_argument("--work-dir", type=Path, help="job log and checkpoint (default: under stack.state_dir)")
    drill.add_argument("--keep", action="store_true", help="keep the scratch keyspace and topic afterwards")

    add_bench_arguments(
        add_command(
            commands,
            "bench",
            bench,
            "capacity against the write ceiling, event→alert latency, batch fixed cost and recovery, "
            "fraudshop vs the original design",
        )
    )

    slides_parser = add_command(
        commands,
        "slides",
        slides,
        "the presenter notebook as reveal.js slides that open offline (as saved: not run)",
    )
    # Defaults relative to a checkout, as bench's: the notebook is not part of the package.
    slides_parser.add_argument(
        "--notebook", type=Path, default=Path("notebooks/fraudshop_demo.ipynb"), help="the notebook"
    )
    slides_parser.add_argument(
        "--output", type=Path, default=Path("results/slides"), help="where the HTML and reveal.js go"
    )
