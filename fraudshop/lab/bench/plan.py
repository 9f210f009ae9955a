"""What a benchmark run does: the plan, and the ``fraudshop bench`` options that build it (light
to import: the command-line parser loads this module)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraudshop.lab.bench.workload import Workload

#: The Spark batch job that writes the backlog's worth of rows in one connector write: the ceiling.
CEILING = "ceiling"
#: The streaming systems: the detection job, and the original proofshop's design.
STREAMING_SYSTEMS = ("fraudshop", "baseline")
SYSTEM_NAMES = (CEILING, *STREAMING_SYSTEMS)
#: The docs page whose table `fraudshop bench --update-readme` rewrites, relative to the checkout (the README links
#: to it; the option kept its name from when the table was in README.md).
BENCHMARK_PAGE = Path("docs/benchmark.md")


@dataclass(frozen=True)
class BenchPlan:
    workload: Workload
    systems: tuple[str, ...]
    #: Transactions pre-loaded on the topic while the job is stopped, then drained: the capacity.
    #: The ceiling writes as many rows.
    backlog: int
    #: Event→alert latency phases: each offered rate (txn/s) for this long, highest first.
    latency_rates: tuple[float, ...]
    latency_seconds: float
    #: The small-batch phase: batches of a few dozen records, whose median length is the fixed cost.
    small_batch_rate: float
    small_batch_seconds: float
    #: Offered at the highest latency rate before measuring, so the slow batches of cold JVMs (the
    #: job's and Cassandra's, compiling their hot paths) are not measured.
    warmup_seconds: float
    #: Producer processes that pre-load the backlog, each a slice of it.
    preload_processes: int = 2
    #: The crash happens once the job has reported this many batches with records at the lowest latency rate.
    batches_before_kill: int = 2
    #: Sent first; the job is ready once it processed them.
    warmup_transactions: int = 50
    start_timeout_seconds: float = 300
    drain_timeout_seconds: float = 900
    keep: bool = False

    @property
    def recovery_rate(self) -> float:
        """The job is killed while it streams at the lowest latency rate."""
        return min(self.latency_rates)


def _rates(text: str) -> tuple[float, ...]:
    return tuple(sorted((float(rate) for rate in text.split(",")), reverse=True))


def _systems(text: str) -> tuple[str, ...]:
    systems = tuple(text.split(","))
    unknown = set(systems) - set(SYSTEM_NAMES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown system(s) {sorted(unknown)}; known: {', '.join(SYSTEM_NAMES)}")
    return systems


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every system (5-6 minutes on 2 cores)")
    parser.add_argument(
        "--authorize",
        action="store_true",
        help="instead: POST /authorize's latency at --authorize-rate (p50/p95/p99, the rate reached), against "
        "GET /health's at the same rate; figures under 'authorize' in DIR/latest.json with --write-benchmarks",
    )
    parser.add_argument("--authorize-rate", type=float, default=200.0, help="--authorize: requests/s offered")
    parser.add_argument(
        "--authorize-seconds", type=float, default=30.0, help="--authorize: seconds measured, each rate"
    )
    parser.add_argument(
        "--authorize-light-rate",
        type=float,
        default=20.0,
        help="--authorize: a second rate, one the API keeps up with (its latency without queueing)",
    )
    parser.add_argument(
        "--authorize-history", type=int, default=30, help="--authorize: stored transactions per account (30 days)"
    )
    parser.add_argument(
        "--systems", type=_systems, default=SYSTEM_NAMES, help=f"comma-separated, of: {', '.join(SYSTEM_NAMES)}"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=500_000,
        help="transactions pre-loaded on the topic, then drained by the job (capacity); the ceiling writes as many",
    )
    parser.add_argument(
        "--preload-processes",
        type=int,
        default=max(2, len(os.sched_getaffinity(0))),
        help="producer processes that pre-load the backlog",
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=60.0, help="unmeasured traffic at the highest latency rate"
    )
    parser.add_argument(
        "--latency-rates", type=_rates, default=(2000.0, 200.0), help="offered txn/s of the latency phases"
    )
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="length of each latency phase")
    parser.add_argument(
        "--small-batch-rate", type=float, default=20.0, help="offered txn/s of the small-batch (fixed cost) phase"
    )
    parser.add_argument("--small-batch-seconds", type=float, default=20.0, help="length of the small-batch phase")
    parser.add_argument("--accounts", type=int, default=2000, help="accounts of the synthetic workload")
    parser.add_argument("--changed-every", type=int, default=20, help="every n-th account changed its profile")
    parser.add_argument(
        "--history-changes",
        type=int,
        default=200_000,
        help="old profile changes (2-365 days) in cust_change before the run, as a bank's history",
    )
    parser.add_argument(
        "--rules",
        type=int,
        default=10_000,
        help="fraud-prevention rules in force, over ten times the accounts and every merchant of the workload",
    )
    parser.add_argument(
        "--cases-per-pattern",
        type=int,
        default=40,
        help="instances of each labelled fraud pattern seeded as known cases (fraud and genuine), for the similarity",
    )
    parser.add_argument("--seed", type=int, default=6, help="seed of the synthetic workload")
    parser.add_argument("--output", type=Path, default=Path("results"), help="directory of bench.json and bench.png")
    parser.add_argument("--keep", action="store_true", help="keep the scratch keyspaces, topics and checkpoints")
    parser.add_argument(
        "--write-benchmarks",
        type=Path,
        metavar="DIR",
        help="after the run, copy bench.json and bench.png to DIR/latest.json and DIR/latest.png and append "
        "a summary line to DIR/history.jsonl (the repository's is benchmarks/)",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help=f"rewrite the benchmark table of {BENCHMARK_PAGE} (the docs page the README links to) from "
        "benchmarks/latest.json (from DIR/latest.json after a run with --write-benchmarks DIR); alone, it runs no "
        "benchmark",
    )
    parser.add_argument(
        "--benchmark-page",
        "--readme",
        dest="benchmark_page",
        type=Path,
        default=BENCHMARK_PAGE,
        help=f"the page that --update-readme edits (default {BENCHMARK_PAGE})",
    )


def plan_from_args(args: argparse.Namespace) -> BenchPlan:
    from fraudshop.lab.bench.workload import Workload

    systems = args.systems
    if args.smoke:
        return BenchPlan(
            Workload(
                accounts=200, changed_every=10, seed=args.seed, history_changes=2000, rules=200, cases_per_pattern=5
            ),
            systems,
            backlog=3000,
            latency_rates=(2000.0, 200.0),
            latency_seconds=4.0,
            small_batch_rate=20.0,
            small_batch_seconds=6.0,
            warmup_seconds=3.0,
            preload_processes=2,
            keep=args.keep,
        )
    return BenchPlan(
        Workload(
            args.accounts, args.changed_every, args.seed, args.history_changes, args.rules, args.cases_per_pattern
        ),
        systems,
        backlog=args.backlog,
        latency_rates=args.latency_rates,
        latency_seconds=args.latency_seconds,
        small_batch_rate=args.small_batch_rate,
        small_batch_seconds=args.small_batch_seconds,
        warmup_seconds=args.warmup_seconds,
        preload_processes=args.preload_processes,
        keep=args.keep,
    )
