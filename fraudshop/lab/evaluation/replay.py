"""The evaluation's run: replay labelled transactions day by day through Kafka, the running detection job
and Cassandra (a scratch keyspace and topic), feed the labels back as confirmed cases after the feedback
delay, train the risk model as at the test period's start, and measure the test period's stored scores."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.session import prepared
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.jobs.launcher import TRAINING_JOB, run_job, start_job, stop_job
from fraudshop.lab.bench.progress import read_batches, records_done
from fraudshop.lab.bench.publish import source_commit
from fraudshop.lab.console import step
from fraudshop.lab.evaluation.data import as_records, load_labelled_transactions
from fraudshop.lab.evaluation.metrics import calibration, known_compromised_excluded, signal_figures
from fraudshop.lab.scratch import scratch_space
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import CaseLabel, CaseSource, FraudCase, transaction_case_id
from fraudshop.model.features import HISTORY_DAYS
from fraudshop.model.risk import RISK_FEATURES
from fraudshop.pipeline.stream import QUERY_NAME

log = logging.getLogger(__name__)

#: Who records the feedback cases.
RECORDED_BY = "fraudshop-evaluate"
#: The signals measured, each a column of the test frame: name -> what it is.
SIGNALS: dict[str, str] = {
    "amount": "amount only (baseline)",
    "profile_change_window": "profile-change window (the original rule)",
    "similarity": "similarity to known cases",
    "risk_model": "risk model (the combined decision)",
}


class EvaluationError(RuntimeError):
    """The run cannot give figures: too few days before the test, a job that stopped, a missing score."""


@dataclass(frozen=True)
class EvaluationPlan:
    data: Path
    test_from: date
    test_to: date
    first_day: date | None = None  # the replay's first day (default: the data's)
    customers: int | None = None  # a random sample of the customers (default: all)
    seed: int = 0
    feedback_delay_days: int = 7
    #: Days a card's history needs before its transactions teach the model (the features look back 30).
    warm_up_days: int = HISTORY_DAYS
    #: Genuine transactions recorded as genuine cases per fraud fed back, so a similarity score's
    #: share of frauds among the nearest cases means something.
    genuine_per_fraud: int = 1
    day_timeout_seconds: float = 900


def _midnight(day: date) -> datetime:
    return datetime.combine(day, day_time(), tzinfo=UTC)


def _training_days(plan: EvaluationPlan, first_day: date, config: Config) -> int:
    """Training ends the delay before the test; it starts at most ``risk.training_days`` before that, and
    never before the cards have ``warm_up_days`` of replayed history."""
    end = plan.test_from - timedelta(days=plan.feedback_delay_days)
    start = max(end - timedelta(days=config.risk.training_days), first_day + timedelta(days=plan.warm_up_days))
    if start >= end:
        raise EvaluationError(
            f"no day to train on: training ends {end} (the test's start less the {plan.feedback_delay_days}-day "
            f"delay) and may start only {plan.warm_up_days} days after the replay's first day {first_day}"
        )
    return (end - start).days


def _vectors(session: Session, keyspace: str, keys: Sequence[tuple[str, datetime, str]]) -> list[Any]:
    """The stored vectors of the transactions ``keys`` (account, time, tranid), in order."""
    select = prepared(
        session, f"SELECT vector FROM {keyspace}.transaction WHERE account_no = ? AND tranpostdt = ? AND tranid = ?"
    )
    results = execute_concurrent_with_args(session, select, keys, concurrency=32, raise_on_first_error=True)
    vectors = []
    for key, (_, result) in zip(keys, results, strict=True):
        row = result.one()
        if row is None or row.vector is None:
            raise EvaluationError(f"transaction {key} has no stored vector: was it scored?")
        vectors.append(row.vector)
    return vectors


def feedback_cases(
    session: Session,
    keyspace: str,
    day: pd.DataFrame,
    recorded_at: datetime,
    plan: EvaluationPlan,
    rng: np.random.Generator,
) -> list[FraudCase]:
    """The cases a day's labels give back at ``recorded_at``: each fraud, and ``genuine_per_fraud`` genuine
    transactions of the day drawn at random, with the vectors the job stored."""
    frauds = day[day["TX_FRAUD"] == 1]
    genuine = day[day["TX_FRAUD"] == 0]
    drawn = genuine.iloc[
        rng.choice(len(genuine), size=min(len(genuine), plan.genuine_per_fraud * len(frauds)), replace=False)
    ]
    chosen = pd.concat([frauds, drawn])
    keys = [
        (str(customer), at.to_pydatetime(), str(tranid))
        for customer, at, tranid in zip(
            chosen["CUSTOMER_ID"], chosen["TX_DATETIME"], chosen["TRANSACTION_ID"], strict=True
        )
    ]
    vectors = _vectors(session, keyspace, keys)
    return [
        FraudCase(
            case_id=transaction_case_id(account, at, tranid),
            vector=tuple(vector),
            label=CaseLabel.FRAUD if label == 1 else CaseLabel.GENUINE,
            source=CaseSource.FEEDBACK,
            pattern=f"scenario {scenario}" if label == 1 else None,
            recorded_at=recorded_at,
            recorded_by=RECORDED_BY,
            account_no=account,
            tranpostdt=at,
            tranid=tranid,
            merchant_id=str(terminal),
            amount=float(amount),
        )
        for (account, at, tranid), vector, label, scenario, terminal, amount in zip(
            keys,
            vectors,
            chosen["TX_FRAUD"],
            chosen["TX_FRAUD_SCENARIO"],
            chosen["TERMINAL_ID"],
            chosen["TX_AMOUNT"],
            strict=True,
        )
    ]


def _stored_scores(session: Session, keyspace: str, test: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The job's scores of the test period's transactions: tranid, similarity, probability, model version and
    the profile-change window feature."""
    select = prepared(
        session,
        f"SELECT tranid, risk_score, fraud_probability, model_version, risk_features FROM {keyspace}.transaction "
        "WHERE account_no = ? AND tranpostdt >= ? AND tranpostdt < ?",
    )
    accounts = [(str(customer), start, end) for customer in test["CUSTOMER_ID"].unique()]
    window = RISK_FEATURES.index("profile_change_window")
    rows: list[tuple[Any, ...]] = []
    for success, result in execute_concurrent_with_args(session, select, accounts, concurrency=32):
        if not success:
            raise result
        rows.extend(
            (row.tranid, row.risk_score, row.fraud_probability, row.model_version,
             None if row.risk_features is None else row.risk_features[window])
            for row in result
        )  # fmt: skip
    return pd.DataFrame(rows, columns=["tranid", "similarity", "risk_model", "model_version", "profile_change_window"])


def run_evaluation(config: Config, plan: EvaluationPlan, work_dir: Path, keep: bool = False) -> dict[str, Any]:
    """Replay, feed back, train, measure; return the figures (``docs/evaluation.md`` explains each)."""
    started = time.monotonic()
    with step(f"reading {plan.data}"):
        frame = load_labelled_transactions(plan.data, plan.first_day, plan.test_to, plan.customers, plan.seed)
    days = sorted(frame["day"].unique())
    first_day = days[0]
    if plan.test_from not in days or plan.test_from <= first_day:
        raise EvaluationError(
            f"the test period must start after the replay's first day {first_day}, on a day with data"
        )
    training_days = _training_days(plan, first_day, config)
    evaluated = config.with_settings(
        f"risk.training_days={training_days}",
        f"risk.feedback_delay_days={plan.feedback_delay_days}",
        "similarity.enabled=true",
    )
    by_day = {day: part for day, part in frame.groupby("day")}
    # An earlier run's progress lines (the job appends) would count as this run's, and its checkpoint
    # would resume another topic: a run starts from neither.
    (work_dir / "progress.jsonl").unlink(missing_ok=True)
    shutil.rmtree(work_dir / "checkpoint", ignore_errors=True)
    rng = np.random.default_rng(plan.seed)
    feedback = 0
    with scratch_space(evaluated, "evaluation", work_dir, keep=keep) as (scratch, session):
        job_log = work_dir / "job.log"
        with open(job_log, "ab") as output:
            job = start_job(scratch, output)
        cases = CaseStore(session, scratch.cassandra.keyspace)
        try:
            sent = 0
            with step("replaying") as shown:
                for number, day in enumerate(days, 1):
                    if day == plan.test_from:
                        shown.update(f"training the risk model as at {day}")
                        as_of = _midnight(day)
                        code = run_job(scratch, script=TRAINING_JOB, arguments=["--as-of", as_of.isoformat()])
                        if code != 0:
                            raise EvaluationError(f"the risk model's training failed (exit {code})")
                    records = as_records(by_day[day])
                    shown.update(f"day {number} of {len(days)}: {day}, {len(records):,} transactions")
                    sent += send_transactions(scratch.kafka, records, rate=0, record_format="json")

                    def caught_up(target: int = sent) -> bool:
                        if job.poll() is not None:
                            raise EvaluationError(f"the job stopped (exit {job.returncode}); see {job_log}")
                        return records_done(read_batches(Path(scratch.job.progress_file)), (QUERY_NAME,)) >= target

                    wait_until(caught_up, plan.day_timeout_seconds, f"the job to score {day}", interval=0.5)
                    # At the day's end, the labels of the day the delay before it come back.
                    labelled_day = day - timedelta(days=plan.feedback_delay_days)
                    if labelled_day in by_day:
                        found = feedback_cases(
                            session,
                            scratch.cassandra.keyspace,
                            by_day[labelled_day],
                            _midnight(day + timedelta(days=1)),
                            plan,
                            rng,
                        )
                        feedback += cases.record(found)
                    log.info("day %s replayed: %d transactions in all, %d feedback cases", day, sent, feedback)
            model = ModelStore(session, scratch.cassandra.keyspace).current()
            if model is None:
                raise EvaluationError("no risk model was recorded")
            test = frame[(frame["day"] >= plan.test_from) & (frame["day"] <= plan.test_to)]
            with step("reading the test period's scores"):
                scores = _stored_scores(
                    session,
                    scratch.cassandra.keyspace,
                    test,
                    _midnight(plan.test_from),
                    _midnight(plan.test_to + timedelta(days=1)),
                )
        finally:
            stop_job(job)
    measured = test.assign(tranid=test["TRANSACTION_ID"].astype(str)).merge(scores, on="tranid", how="left")
    unscored = measured["risk_model"].isna() | (measured["model_version"] != model.version)
    if unscored.any():
        raise EvaluationError(f"{int(unscored.sum())} test transactions have no probability from model {model.version}")
    return _figures(plan, frame, measured, model, feedback, training_days, time.monotonic() - started)


def _figures(
    plan: EvaluationPlan,
    frame: pd.DataFrame,
    measured: pd.DataFrame,
    model: Any,
    feedback: int,
    training_days: int,
    seconds: float,
) -> dict[str, Any]:
    labelled = pd.DataFrame({"day": frame["day"], "card": frame["CUSTOMER_ID"], "label": frame["TX_FRAUD"]})
    test = measured.assign(card=measured["CUSTOMER_ID"], label=measured["TX_FRAUD"], amount=measured["TX_AMOUNT"])
    kept = known_compromised_excluded(test, labelled, plan.test_from, plan.feedback_delay_days)
    if kept["label"].nunique() < 2:
        raise EvaluationError(
            f"the test period holds {len(kept)} transactions of cards not known to be compromised, "
            f"{int(kept['label'].sum())} of them frauds: measuring needs both (widen the period or the sample)"
        )
    return {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": source_commit(),
        "data": str(plan.data),
        "plan": {key: str(value) if isinstance(value, (Path, date)) else value for key, value in asdict(plan).items()},
        "replayed": {
            "transactions": len(frame),
            "frauds": int(frame["TX_FRAUD"].sum()),
            "days": int(frame["day"].nunique()),
            "feedback_cases": feedback,
            "seconds": round(seconds, 1),
        },
        "model": {
            "version": model.version,
            "training_days": training_days,
            "training_transactions": model.training_rows,
            "training_frauds": model.training_frauds,
            "training_auc_roc": round(model.training_auc, 4),
            "coefficients": {name: round(c, 4) for name, c in zip(model.features, model.coefficients, strict=True)},
            "intercept": round(model.intercept, 4),
        },
        "test": {
            "from": str(plan.test_from),
            "to": str(plan.test_to),
            "transactions": len(test),
            "frauds": int(test["label"].sum()),
            "known_compromised_excluded": len(test) - len(kept),
            "measured_transactions": len(kept),
            "measured_frauds": int(kept["label"].sum()),
        },
        "signals": {name: {"signal": what, **signal_figures(kept, name)} for name, what in SIGNALS.items()},
        "calibration": calibration(kept, "risk_model"),
    }
