"""The scoring step of a micro-batch: read the known cases and the newest risk model (every batch, so a
case recorded or a model trained while the job runs counts from the next batch), the batch's accounts'
history and profile changes; score every transaction against the cases, compute its risk features and,
given a model, its fraud probability; store them with it; and announce then store a hit for each
transaction whose similarity score reaches the threshold."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.model.features import CHANGE_EVENT, EVENT_COLUMNS, HISTORY_DAYS, TRANSACTION_EVENT
from fraudshop.model.tables import RULE_HIT_COLUMNS, SCORE_COLUMNS, TRANSACTION_KEY
from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.hits import file_hits
from fraudshop.pipeline.ports import DetectionStore, NotificationSink
from fraudshop.transforms.features import Scoring, scored_transactions
from fraudshop.transforms.similarity import similarity_hits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimilarityOutcome:
    cases: int  # known cases the batch was scored against
    scored: int  # transactions scored
    hits: int


@dataclass(eq=False)
class SimilarityStep:
    """Per batch: score each transaction against every known case (exact search over a broadcast of the
    cases), write its vector, score, nearest cases, risk features and fraud probability (with the model's
    version; none before the first model) to its ``transaction`` row, and file a
    ``similar_to_fraud`` hit for each score at or over ``threshold``: announced, stored, marked done, as
    the rules' hits are (:class:`~fraudshop.pipeline.rules.RuleStep`), so a batch run again announces no
    hit twice but one that failed between its announcement and its mark."""

    store: DetectionStore
    notifications: NotificationSink
    threshold: float
    nearest: int

    def apply(self, batch: DataFrame, detected_at: str) -> SimilarityOutcome:
        """``batch``: the batch's valid transactions, each key once
        (:func:`~fraudshop.transforms.rules.distinct_transactions`), held; ``detected_at``: the column of
        the batch's time they carry."""
        known = self.store.fraud_cases()
        model = self.store.risk_model()
        cases = batch.sparkSession.sparkContext.broadcast(known)
        try:
            return self._score(batch, Scoring(cases, self.nearest, model), len(known), detected_at)
        finally:
            cases.destroy()

    def _score(self, batch: DataFrame, scoring: Scoring, case_count: int, detected_at: str) -> SimilarityOutcome:
        row = batch.agg(F.min("tranpostdt").alias("earliest")).first()
        if row is None or row.earliest is None:
            return SimilarityOutcome(case_count, 0, 0)
        since = row.earliest.replace(tzinfo=UTC) - timedelta(days=HISTORY_DAYS)
        accounts = batch.select("account_no").distinct()
        scored = scored_transactions(batch, self._events(accounts, since), scoring)
        with computed_once(scored) as held:
            # Counted as the scores are written: the hits' jobs run only when a score reaches the threshold.
            observed = Observation()
            written = held.observe(
                observed,
                F.count(F.lit(1)).alias("scored"),
                F.count(F.when(F.col("risk_score") >= F.lit(self.threshold), True)).alias("over"),
            )
            self.store.write_scores(written.select(*TRANSACTION_KEY, *SCORE_COLUMNS))
            counts = observed.get
            if not counts["over"]:
                return SimilarityOutcome(case_count, counts["scored"], 0)
            over = held.where(F.col("risk_score") >= F.lit(self.threshold))
            holders = self.store.holders_of_accounts(over.select("account_no"))
            hits = similarity_hits(held, batch, holders, self.threshold, self.nearest, carried=(detected_at,))
            stamped = self.store.not_done(hits).withColumn("detected_at", F.col(detected_at))
            hit_count = file_hits(self.store, self.notifications, stamped.select(*RULE_HIT_COLUMNS))
        return SimilarityOutcome(case_count, counts["scored"], hit_count)

    def _events(self, accounts: DataFrame, since: datetime) -> DataFrame:
        """The accounts' stored transactions and profile changes from ``since`` (EVENT_COLUMNS)."""
        history = self.store.history_of_accounts(accounts, since)
        stored = history.select(*EVENT_COLUMNS[:5], F.lit(TRANSACTION_EVENT).alias("event"))
        changes = self.store.changes_of_accounts(accounts).where(F.col("last_updated") >= F.lit(since))
        changed = changes.select(
            "account_no",
            F.col("last_updated").alias("tranpostdt"),
            F.lit("").alias("tranid"),
            F.lit(None).cast("double").alias("amount"),
            F.lit(None).cast("string").alias("merchant_id"),
            F.lit(CHANGE_EVENT).alias("event"),
        ).distinct()  # one event per change time (a change touches several fields)
        return stored.unionByName(changed)
