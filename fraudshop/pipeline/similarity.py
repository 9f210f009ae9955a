"""The scoring step of a micro-batch: read the known cases and the newest risk model (every batch, so a
case recorded or a model trained while the job runs counts from the next batch), the batch's accounts'
history and profile changes; score every transaction against the cases, compute its risk features and,
given a model, its fraud probability; store them with it; and announce then store a hit for each
transaction whose similarity score reaches the threshold."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from fraudshop.model.features import (
    CHANGE_EVENT,
    DAY_MICROS,
    EVENT_COLUMNS,
    HISTORY_DAYS,
    TRANSACTION_EVENT,
    day_number,
    day_of_number,
)
from fraudshop.model.risk import ConfirmedFrauds, MerchantTotals, share_days_to_read
from fraudshop.model.tables import MERCHANT_DAY_KEY, RULE_HIT_COLUMNS, SCORE_COLUMNS, TRANSACTION_KEY
from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.hits import file_hits
from fraudshop.pipeline.ports import DetectionStore, NotificationSink
from fraudshop.transforms.features import Scoring, scored_transactions
from fraudshop.transforms.similarity import similarity_hits

log = logging.getLogger(__name__)


def _by_day(pair: tuple[str | None, int]) -> int:
    return pair[1]


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
    #: The merchant-day totals the last batch read: they never change once counted.
    _held_totals: dict[tuple[str, date], int] = field(default_factory=dict, init=False)

    def apply(self, batch: DataFrame, detected_at: str) -> SimilarityOutcome:
        """``batch``: the batch's valid transactions, each key once
        (:func:`~fraudshop.transforms.rules.distinct_transactions`), held; ``detected_at``: the column of
        the batch's time they carry."""
        known = self.store.fraud_cases()
        frauds = known.confirmed
        aggregates = [F.min("tranpostdt").alias("earliest"), F.max(detected_at).alias("batch_at")]
        if len(frauds):  # the merchant-days a share could need, in the same job
            at_merchant = F.when(F.col("merchant_id").isNotNull(), F.struct("merchant_id", F.to_date("tranpostdt")))
            aggregates.append(F.collect_set(at_merchant).alias("merchant_days"))
        row = batch.agg(*aggregates).first()
        if row is None or row.earliest is None:
            return SimilarityOutcome(len(known), 0, 0)
        earliest = row.earliest.replace(tzinfo=UTC)
        totals = (
            self._merchant_totals(batch.sparkSession, frauds, [tuple(pair) for pair in row.merchant_days], row.batch_at)
            if len(frauds)
            else MerchantTotals.none()
        )
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
        self, spark: SparkSession, frauds: ConfirmedFrauds, merchant_days: list[tuple[str, date]], batch_at: datetime
    ) -> MerchantTotals:
        """The daily totals the fraud shares of the batch's transactions at ``merchant_days`` (merchant, UTC
        day) read: at merchants with a confirmed fraud that happened within their windows (a share is 0
        elsewhere), on the days of those windows, and never after the batch's own day less the delay. Totals
        never change once counted: held across batches, read from ``merchant_day_total`` when not held, and
        counted from ``transaction_by_merchant_day`` and stored when not stored yet, so a merchant-day is
        counted once (a transaction arriving later than the delay after its day is not counted)."""
        newest = day_number(batch_at.date()) - self.feedback_delay_days - 1
        fraud_days: dict[str, list[int]] = {}  # each merchant's confirmed frauds' days, in order
        for merchant, day in sorted(
            zip(frauds.merchant_ids, (frauds.happened_micros // DAY_MICROS).tolist(), strict=True), key=_by_day
        ):
            if merchant is not None:
                fraud_days.setdefault(merchant, []).append(day)
        needed: set[tuple[str, date]] = set()
        for merchant, day in merchant_days:
            window = share_days_to_read(day_number(day), fraud_days.get(merchant, []), self.feedback_delay_days, newest)
            if window is not None:
                needed.update((merchant, day_of_number(number)) for number in range(window[0], window[1] + 1))
        if not needed:
            return MerchantTotals.none()
        self._held_totals = {key: count for key, count in self._held_totals.items() if key in needed}
        if unheld := needed - self._held_totals.keys():
            merchants = spark.createDataFrame(sorted({(merchant,) for merchant, _ in unheld}), "merchant_id string")
            days = [day for _, day in unheld]
            stored = self.store.merchant_day_totals(merchants, min(days), max(days)).collect()
            self._held_totals.update(
                {(row.merchant_id, row.day): row.transactions for row in stored if (row.merchant_id, row.day) in needed}
            )
        if missing := sorted(needed - self._held_totals.keys()):
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
            self._held_totals.update({(merchant, day): count for merchant, day, count in new})
        held = self._held_totals
        return MerchantTotals(
            np.array([merchant for merchant, _ in held], dtype=object),
            np.array([day_number(day) for _, day in held], dtype=np.int64),
            np.array(list(held.values()), dtype=np.int64),
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
