"""Where the job's scoring step spends a batch: a profile of the similarity step (vectors, similarity,
risk features, probability), phase by phase, on the local stack, for a few shapes of batch and history.

It seeds the benchmark's known cases, writes each scenario's history (``accounts`` accounts, each with
``history`` stored transactions over the 29 days before now) and times, on a batch of ``batch``
transactions posted now over those accounts (the median of ``--repeats`` runs, after one unmeasured):

- ``cases``: reading every known case and the newest model (driver, CQL);
- ``history read``: reading the batch's accounts' 30 days of stored transactions (Spark, direct join);
- ``scores``: the history read, the shuffle bringing each account's rows together and the numpy scoring
  (``mapInPandas``), without writing;
- ``step``: the whole step as the job runs it: the above, writing the scores to the transaction rows and
  the hits; ``step, no hit``: the same with a threshold no score reaches (what the hits cost is the
  difference);
- ``transaction write``: writing the batch's transaction rows, the job's first write, for comparison;
- ``numpy, one core``: the scoring's numpy functions alone, on the driver, over the same rows (over a share
  of the accounts when their history is large, scaled up to the whole batch).

    .venv/bin/python benchmarks/studies/scoring_profile.py > benchmarks/studies/scoring_profile.txt

It starts the local stack if needed and works in a scratch keyspace, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

INSIDE = "--inside"
SCENARIOS = [(2000, 30), (2000, 300), (20000, 60)]  # (accounts, stored transactions per account)


def median_seconds(action: Callable[[], Any], repeats: int) -> float:
    action()  # unmeasured: the first run plans, compiles and warms the connections
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def inside() -> None:
    """The spark-submit side: one scenario per run of the job."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from fraudshop.config.arguments import config_argument_parser
    from fraudshop.io.cassandra.cases import CaseStore
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.io.cassandra.store import CassandraStore
    from fraudshop.jobs.session import start_job_session_with
    from fraudshop.lab.patterns import seeded_pattern_cases
    from fraudshop.lab.workload import synthetic_transactions
    from fraudshop.model.cases import scores_against
    from fraudshop.model.features import (
        EVENT_COLUMNS,
        HISTORY_DAYS,
        TRANSACTION_INPUTS,
        transaction_context,
        transaction_vectors,
    )
    from fraudshop.model.risk import MerchantTotals, risk_features
    from fraudshop.pipeline.similarity import SimilarityStep
    from fraudshop.transforms.features import Scoring, scored_transactions
    from fraudshop.transforms.parsing import parse_transaction_records, valid_transactions

    parser = config_argument_parser("the scoring step's profile")
    parser.add_argument(INSIDE, action="store_true")
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--history", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    config, spark, args = start_job_session_with(parser, app_name="fraudshop-scoring-profile")
    store = CassandraStore(spark, config.cassandra)
    now = datetime.now(UTC).replace(microsecond=0)
    with cassandra_session(config.cassandra) as session:
        CaseStore(session, config.cassandra.keyspace).record(seeded_pattern_cases(25, 0, now))

    def transactions(count: int, oldest: timedelta, newest: timedelta, seed: int) -> Iterator[DataFrame]:
        """``count`` synthetic transactions posted between ``oldest`` and ``newest`` ago, parsed as the job
        parses them, in frames of at most 100,000 (the driver holds each as Python rows first)."""
        rng = random.Random(seed)
        clock = lambda: now - newest - (oldest - newest) * rng.random()  # noqa: E731
        stream = synthetic_transactions(args.accounts, seed=seed, clock=clock)
        for first in range(0, count, 100_000):
            rows = [
                (json.dumps(next(stream)).encode(), config.kafka.topic, 0, offset, now)
                for offset in range(first, min(count, first + 100_000))
            ]
            records = spark.createDataFrame(
                rows, "value binary, topic string, partition int, offset long, timestamp timestamp"
            ).withColumn("batch_timestamp", F.lit(now))
            parsed = parse_transaction_records(records, carried=("batch_timestamp",))
            yield valid_transactions(parsed, ("batch_timestamp",))

    started = time.perf_counter()
    for part in transactions(args.accounts * args.history, timedelta(days=29), timedelta(minutes=1), seed=1):
        store.write_transactions(part.drop("batch_timestamp"))
    history_write = time.perf_counter() - started
    (batch,) = transactions(args.batch, timedelta(seconds=10), timedelta(0), seed=2)
    batch = batch.cache()
    batch_rows = batch.count()
    store.write_transactions(batch.drop("batch_timestamp"))  # as the job's first write has, beside the step
    accounts = batch.select("account_no").distinct().cache()
    batch_accounts = accounts.count()
    since = now - timedelta(seconds=10) - timedelta(days=HISTORY_DAYS)
    step = SimilarityStep(
        store,
        _NoNotifications(),
        config.similarity.threshold,
        config.similarity.nearest_cases,
        config.risk.feedback_delay_days,
    )
    # The same step with a threshold no score reaches: what the hits cost is the difference.
    no_hit = SimilarityStep(
        store, _NoNotifications(), 1.01, config.similarity.nearest_cases, config.risk.feedback_delay_days
    )
    known = store.fraud_cases()
    cases = spark.sparkContext.broadcast(known)
    totals = spark.sparkContext.broadcast(MerchantTotals.none())
    scoring = Scoring(
        cases, config.similarity.nearest_cases, store.risk_model(), totals, config.risk.feedback_delay_days
    )
    history_rows = store.history_of_accounts(accounts, since).count()

    # The numpy alone on a share of the accounts (the driver holds their rows), scaled up to the batch.
    share = max(1, -(-history_rows // 200_000))
    sampled = accounts.where(F.abs(F.hash("account_no")) % share == 0)
    sampled_rows = batch.join(sampled, "account_no").count()

    def numpy_alone() -> Callable[[], Any]:
        events = step._events(sampled, since).toPandas()[list(EVENT_COLUMNS)]
        pending = batch.join(sampled, "account_no").select(*TRANSACTION_INPUTS).toPandas()

        def run() -> Any:
            context = transaction_context(pending, events)
            vectors = transaction_vectors(pending, context)
            scores = scores_against(vectors, known, config.similarity.nearest_cases)
            return risk_features(
                pending,
                context,
                scores.risk_scores,
                known.confirmed,
                MerchantTotals.none(),
                scoring.feedback_delay_days,
            )

        return run

    figures = {
        "accounts": args.accounts,
        "history_per_account": args.history,
        "batch_transactions": batch_rows,
        "batch_accounts": batch_accounts,
        "history_rows_read": history_rows,
        "cases": len(known),
        "history_write_seconds": round(history_write, 1),
        "seconds": {
            "cases": median_seconds(lambda: (store.fraud_cases(), store.risk_model()), args.repeats),
            "history read": median_seconds(
                lambda: store.history_of_accounts(accounts, since).agg(F.sum("amount")).collect(), args.repeats
            ),
            "scores": median_seconds(
                lambda: (
                    scored_transactions(batch, step._events(accounts, since), scoring)
                    .agg(F.sum("risk_score"), F.count(F.lit(1)))
                    .collect()
                ),
                args.repeats,
            ),
            "step": median_seconds(lambda: step.apply(batch, "batch_timestamp"), args.repeats),
            "step, no hit": median_seconds(lambda: no_hit.apply(batch, "batch_timestamp"), args.repeats),
            "transaction write": median_seconds(
                lambda: store.write_transactions(batch.drop("batch_timestamp")), args.repeats
            ),
            "numpy, one core": round(median_seconds(numpy_alone(), args.repeats) * batch_rows / sampled_rows, 2),
        },
    }
    args.result.write_text(json.dumps(figures))


class _NoNotifications:
    def publish(self, hits: Any) -> None:  # the profile announces nothing
        pass


def outside(arguments: argparse.Namespace) -> None:
    from fraudshop.config import load_config
    from fraudshop.jobs.launcher import run_job
    from fraudshop.lab.scratch import scratch_space
    from fraudshop.lab.stack import stack_up

    config = load_config()
    stack_up(config)
    work_dir = Path("results/scoring-profile")
    print(f"{'accounts':>8} {'history':>7} {'batch':>6} {'its accounts':>12} {'rows read':>9}  seconds (median of "
          f"{arguments.repeats})")  # fmt: skip
    for accounts, history in SCENARIOS[: arguments.scenarios]:
        with scratch_space(config, "profile", work_dir) as (scratch, _):
            result = work_dir / f"profile-{accounts}-{history}.json"
            code = run_job(
                scratch,
                script=Path(__file__).resolve(),
                arguments=[INSIDE, f"--accounts={accounts}", f"--history={history}", f"--batch={arguments.batch}",
                           f"--repeats={arguments.repeats}", f"--result={result}"],
            )  # fmt: skip
            if code != 0:
                sys.exit(f"the profile's job failed (exit {code}); see its output above")
            figures = json.loads(result.read_text())
            phases = ", ".join(f"{name} {seconds}" for name, seconds in figures["seconds"].items())
            print(f"{accounts:>8} {history:>7} {figures['batch_transactions']:>6} {figures['batch_accounts']:>12} "
                  f"{figures['history_rows_read']:>9}  {phases}", flush=True)  # fmt: skip


if __name__ == "__main__":
    if INSIDE in sys.argv:
        inside()
    else:
        logging.basicConfig(level=logging.WARNING)
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--batch", type=int, default=20_000, help="transactions in the batch scored")
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--scenarios", type=int, default=len(SCENARIOS), help="run the first so many scenarios")
        outside(parser.parse_args())
