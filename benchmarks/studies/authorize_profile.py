"""Where one POST /authorize spends its time: the decision's phases, timed in-process (no HTTP), one request
at a time, on the local stack, over the state ``fraudshop bench --authorize`` seeds (its default workload: 2,000
accounts with a month of history, 10,000 rules, the seeded known cases, a model):

- ``state``: the reads of the account and merchant (holder, rules, changes, history, merchant totals and
  day), asynchronous, in their rounds;
- ``vector``: the context and vector from the history (model/features.py, pandas and numpy);
- ``ANN``: the nearest known cases by Cassandra's ANN index;
- ``judge``: the rules, the similarity, the risk features and the probability;
- ``record``: the decision's row;
- ``whole``: all of them; then the CPU one decision costs this process, by thread: the decision's own
  code runs on ``MainThread``, the Cassandra driver's I/O on ``event_loop``.

    .venv/bin/python benchmarks/studies/authorize_profile.py > benchmarks/studies/authorize_profile.txt

It starts the local stack if needed and works in a scratch keyspace, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import re
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

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
from fraudshop.service.authorize import ANN_CANDIDATES_PER_CASE, Authorizer, policy_of

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
        candidates = authorizer.policy.nearest * ANN_CANDIDATES_PER_CASE
        nearest = await authorizer.store.nearest(transaction.vector.tolist(), candidates)
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
        # Where the CPU goes: each thread's CPU time over the same requests again (psutil), by what runs on it.
        before = _thread_cpu()
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        asyncio.run(_timed(authorizer, bodies, arguments.requests))
        wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
        after = _thread_cpu()
        used = {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}
        per_request = 1000 / arguments.requests
        print(
            f"\nCPU of this process: {cpu * per_request:.2f} ms a decision "
            f"({wall * per_request:.2f} ms of wall time each, one at a time), by thread:"
        )
        for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
            if seconds * per_request >= 0.05:
                print(f"{name:>24}  {seconds * per_request:6.2f} ms")


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user and system) of each of this process's threads so far, by the thread's kind: its
    name without a pool's numbering (the driver's I/O loop is ``event_loop``)."""
    names = {thread.native_id: re.sub(r"[-_]\d+(_\d+)?$", "", thread.name) for thread in threading.enumerate()}
    used: dict[str, float] = {}
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "other")
        used[name] = used.get(name, 0.0) + thread.user_time + thread.system_time
    return used


if __name__ == "__main__":
    main()
