"""What a benchmark run does: the plan, and the ``fraudshop bench`` options that build it (light
to import: the command-line parser loads this module)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraudshop.lab.bench.workload import Workload

SYSTEM_NAMES = ("fraudshop", "baseline")


@dataclass(frozen=True)
class BenchPlan:
    workload: Workload
    systems: tuple[str, ...]
    #: The latency phase: this offered rate (txn/s) for this long.
    latency_rate: float
    latency_seconds: float
    #: Throughput steps, raised in turn until the job falls behind.
    rates: tuple[float, ...]
    step_seconds: float
    #: A job kept up with a phase when it had processed everything this soon after the last send.
    max_drain_seconds: float
    #: Offered at the latency rate before measuring, so the slow batches of cold JVMs (the job's
    #: and Cassandra's, compiling their hot paths) are not measured.
    warmup_seconds: float
    #: Sent first; the job is ready once it processed them.
    warmup_transactions: int = 50
    start_timeout_seconds: float = 300
    drain_timeout_seconds: float = 600
    keep: bool = False


def _rates(text: str) -> tuple[float, ...]:
    return tuple(float(rate) for rate in text.split(","))


def _systems(text: str) -> tuple[str, ...]:
    systems = tuple(text.split(","))
    unknown = set(systems) - set(SYSTEM_NAMES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown system(s) {sorted(unknown)}; known: {', '.join(SYSTEM_NAMES)}")
    return systems


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every system (about 2-3 minutes)")
    parser.add_argument(
        "--systems", type=_systems, default=SYSTEM_NAMES, help="comma-separated, of: fraudshop, baseline"
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=60.0, help="unmeasured traffic before the latency phase"
    )
    parser.add_argument("--latency-rate", type=float, default=2000.0, help="offered txn/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="length of the latency phase")
    parser.add_argument("--rates", type=_rates, default=(5000.0, 10000.0, 20000.0), help="offered txn/s steps")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="length of each rate step")
    parser.add_argument(
        "--max-drain-seconds",
        type=float,
        default=10.0,
        help="the job kept up when it had processed everything this soon after the last send",
    )
    parser.add_argument("--accounts", type=int, default=2000, help="accounts of the synthetic workload")
    parser.add_argument("--changed-every", type=int, default=20, help="every n-th account changed its profile")
    parser.add_argument(
        "--history-changes",
        type=int,
        default=200_000,
        help="old profile changes (2-365 days) in cust_change before the run, as a bank's history",
    )
    parser.add_argument("--seed", type=int, default=6, help="seed of the synthetic workload")
    parser.add_argument("--output", type=Path, default=Path("results"), help="directory of bench.json and bench.png")
    parser.add_argument("--keep", action="store_true", help="keep the scratch keyspaces, topics and checkpoints")


def plan_from_args(args: argparse.Namespace) -> BenchPlan:
    from fraudshop.lab.bench.workload import Workload

    systems = args.systems
    if args.smoke:
        return BenchPlan(
            Workload(accounts=200, changed_every=10, seed=args.seed, history_changes=2000),
            systems,
            latency_rate=200.0,
            latency_seconds=10.0,
            rates=(500.0,),
            step_seconds=10.0,
            max_drain_seconds=args.max_drain_seconds,
            warmup_seconds=5.0,
            keep=args.keep,
        )
    return BenchPlan(
        Workload(args.accounts, args.changed_every, args.seed, args.history_changes),
        systems,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        rates=args.rates,
        step_seconds=args.step_seconds,
        max_drain_seconds=args.max_drain_seconds,
        warmup_seconds=args.warmup_seconds,
        keep=args.keep,
    )
