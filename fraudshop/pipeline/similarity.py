"""The scoring step of a micro-batch: read the known cases and the newest risk model (every batch, so a
case recorded or a model trained while the job runs counts from the next batch), the batch's accounts'
history and profile changes; score every transaction against the cases, compute its risk features and,
given a model, its fraud probability; store them with it; and announce then store a hit for each
transaction whose similarity score reaches the threshold."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.model.features import CHANGE_EVENT, EVENT_COLUMNS, HISTORY_DAYS, TRANSACTION_EVENT
from fraudshop.model.risk import ConfirmedFrauds, MerchantTotals, fraud_share_days
from fraudshop.model.tables import MERCHANT_DAY_KEY, RULE_HIT_COLUMNS, SCORE_COLUMNS, TRANSACTION_KEY
from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.hits import file_hits
from fraudshop.pipeline.ports import DetectionStore, NotificationSink
from fraudshop.transforms.features import Scoring, scored_transactions
from fraudshop.transforms.similarity import similarity_hits

log = logging.getLogger(__name__)


_EPOCH = date(1970, 1, 1)


def _day_number(day: date) -> int:
    return (day - _EPOCH).days


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
    #: Days after which a transaction's label is back: the merchants' fraud shares end this long before.
    feedback_delay_days: int

    def apply(self, batch: DataFrame, detected_at: str) -> SimilarityOutcome:
        """``batch``: the batch's valid transactions, each key once
        (:func:`~fraudshop.transforms.rules.distinct_transactions`), held; ``detected_at``: the column of
        the batch's time they carry."""
        known = self.store.fraud_cases()
        row = batch.agg(F.min("tranpostdt").alias("earliest"), F.max("tranpostdt").alias("latest")).first()
        if row is None or row.earliest is None:
            return SimilarityOutcome(len(known), 0, 0)
        earliest, latest = row.earliest.replace(tzinfo=UTC), row.latest.replace(tzinfo=UTC)
        totals = self._merchant_totals(batch, known.confirmed, earliest.date(), latest.date())
        model = self.store.risk_model()
        context = batch.sparkSession.sparkContext
        cases, merchant_totals = context.broadcast(known), context.broadcast(totals)
        try:
            scoring = Scoring(cases, self.nearest, model, merchant_totals, self.feedback_delay_days)
            return self._score(batch, scoring, len(known), earliest, detected_at)
        finally:
            cases.destroy()
            merchant_totals.destroy()

    def _merchant_totals(
        self, batch: DataFrame, frauds: ConfirmedFrauds, earliest: date, latest: date
    ) -> MerchantTotals:
        """The daily totals the batch's merchant fraud shares read: of the batch's merchants with a confirmed
        fraud (a share is 0 without one), on the days of their windows. Days never counted are counted now
        from transaction_by_merchant_day and stored, so each merchant-day is read whole once: the windows end
        the feedback delay before the batch's days, so those days are past (a transaction arriving later
        than the delay is not counted)."""
        with_frauds = sorted({merchant for merchant in frauds.merchant_ids if merchant is not None})
        first, last = (
            _EPOCH + timedelta(days=day)
            for day in fraud_share_days(_day_number(earliest), _day_number(latest), self.feedback_delay_days)
        )
        if not with_frauds or first > last:
            return MerchantTotals.none()
        spark = batch.sparkSession
        candidates = spark.createDataFrame([(merchant,) for merchant in with_frauds], "merchant_id string")
        merchants = [
            row.merchant_id
            for row in batch.select("merchant_id").distinct().join(F.broadcast(candidates), "merchant_id").collect()
        ]
        if not merchants:
            return MerchantTotals.none()
        named = spark.createDataFrame([(merchant,) for merchant in merchants], "merchant_id string")
        stored = {
            (row.merchant_id, row.day): row.transactions
            for row in self.store.merchant_day_totals(named, first, last).collect()
        }
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        missing = [(merchant, day) for merchant in merchants for day in days if (merchant, day) not in stored]
        if missing:
            keys = spark.createDataFrame(missing, "merchant_id string, day date")
            counted = {
                (row.merchant_id, row.day): row.transactions
                for row in self.store.transactions_of_merchant_days(keys)
                .groupBy(*MERCHANT_DAY_KEY)
                .agg(F.count(F.lit(1)).cast("int").alias("transactions"))
                .collect()
            }
            new = [(merchant, day, counted.get((merchant, day), 0)) for merchant, day in missing]
            self.store.write_merchant_day_totals(
                spark.createDataFrame(new, "merchant_id string, day date, transactions int").withColumn(
                    "counted_at", F.current_timestamp()
                )
            )
            stored.update({(merchant, day): count for merchant, day, count in new})
        return MerchantTotals(
            np.array([merchant for merchant, _ in stored], dtype=object),
            np.array([_day_number(day) for _, day in stored], dtype=np.int64),
            np.array(list(stored.values()), dtype=np.int64),
        )

    def _score(
        self, batch: DataFrame, scoring: Scoring, case_count: int, earliest: datetime, detected_at: str
    ) -> SimilarityOutcome:
        since = earliest - timedelta(days=HISTORY_DAYS)
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
