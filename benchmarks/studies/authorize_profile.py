"""Where one POST /authorize spends its time: the decision's phases, timed in-process (no HTTP), one request
at a time, on the local stack, over the state ``fraudshop bench --authorize`` seeds (its default workload: 2,000
accounts with a month of history, 10,000 rules, the seeded known cases, a model):

- ``state``: the reads of the account and merchant (holder, rules, changes, history, merchant totals and
  day), asynchronous, in their rounds;
- ``vector``: the context and vector from the history (model/features.py, pandas and numpy);
- ``ANN``: the nearest known cases by Cassandra's ANN index;
- ``judge``: the rules, the similarity, the risk features and the probability;
- ``record``: the decision's row;
- ``whole``: all of them; then the functions of ``vector`` that take the most time (cProfile).

    .venv/bin/python benchmarks/studies/authorize_profile.py > benchmarks/studies/authorize_profile.txt

It starts the local stack if needed and works in a scratch keyspace, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import logging
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudshop.config import load_config
from fraudshop.io.cassandra.authorization import AuthorizationStore
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.lab.bench.authorize import AuthorizePlan, request_bodies, seed_authorize_state
from fraudshop.lab.bench.workload import Workload
from fraudshop.lab.scratch import scratch_space
from fraudshop.lab.stack import stack_up
from fraudshop.model.authorization import authorize, vectorised
from fraudshop.model.changes import to_cassandra_time
from fraudshop.service.authorize import Authorizer, policy_of

PHASES = ("state", "vector", "ANN", "judge", "record", "whole")


def _record_of(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "tranpostdt": to_cassandra_time(datetime.now(UTC))}


async def _timed(authorizer: Authorizer, bodies: Any, count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    frauds, model = authorizer._held
    for _ in range(count):
        record = _record_of(next(bodies))
        marks = [time.perf_counter()]
        state = await authorizer.state_of(record, frauds)
        marks.append(time.perf_counter())
        transaction = vectorised(record, state)
        marks.append(time.perf_counter())
        nearest = await authorizer.store.nearest(transaction.vector.tolist(), authorizer.policy.nearest)
        marks.append(time.perf_counter())
        outcome = authorize(record, state, transaction, nearest, model, authorizer.policy)
        marks.append(time.perf_counter())
        await authorizer.store.record(record, state.holder, outcome)
        marks.append(time.perf_counter())
        for phase, (start, end) in zip(PHASES[:-1], itertools.pairwise(marks), strict=True):
            times[phase].append(1000 * (end - start))
        times["whole"].append(1000 * (marks[-1] - marks[0]))
    return times


def _line(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{name:>8}  median {statistics.median(values):7.2f} ms  p99 {p99:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config()
    stack_up(config)
    plan = AuthorizePlan(Workload(2000, 20, 6, 0, 10_000, 40), 30, 0.0, 0.0, 0.0, 0.0)
    with (
        tempfile.TemporaryDirectory() as work,
        scratch_space(config, "authorize_profile", Path(work)) as (
            scratch,
            session,
        ),
    ):
        keyspace = scratch.cassandra.keyspace
        seed_authorize_state(session, keyspace, plan, to_cassandra_time(datetime.now(UTC)))
        authorizer = Authorizer(
            AuthorizationStore(session, keyspace),
            CaseStore(session, keyspace),
            ModelStore(session, keyspace),
            policy_of(scratch),
            3600,
        )
        authorizer.refresh()
        bodies = request_bodies(plan)
        asyncio.run(_timed(authorizer, bodies, 100))  # warm-up: prepared statements, caches
        times = asyncio.run(_timed(authorizer, bodies, arguments.requests))
        print(f"{arguments.requests} requests, one at a time, in-process (no HTTP); 2,000 accounts x 30 days")
        for phase in PHASES:
            print(_line(phase, times[phase]))
        frauds, _ = authorizer._held
        records = [_record_of(next(bodies)) for _ in range(200)]
        states = [asyncio.run(authorizer.state_of(record, frauds)) for record in records]
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for record, state in zip(records, states, strict=True):
            vectorised(record, state)
        profile.disable()
        print(f"\nvector, profiled: {1000 * (time.perf_counter() - started) / len(records):.2f} ms a request")
        report = io.StringIO()
        pstats.Stats(profile, stream=report).sort_stats("tottime").print_stats(12)
        _print_top(report.getvalue(), print)


def _print_top(report: str, emit: Callable[[str], None]) -> None:
    lines = report.splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip().startswith("ncalls"))
    for line in lines[start:]:
        if line.strip():
            emit(line.replace(str(Path.cwd()) + "/", "").rstrip())


if __name__ == "__main__":
    main()
