"""The fraud-prevention rules' step of a micro-batch: read the rules of the batch's accounts, holders and
merchants (never the whole rule table), what they look back at, find the hits, notify, then store them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.rule_evaluation import history_since
from fraudshop.model.rules import RuleScope
from fraudshop.model.tables import ACCOUNT_HOLDER_COLUMNS, RULE_HIT_COLUMNS
from fraudshop.pipeline.held import collected
from fraudshop.pipeline.hits import file_hits
from fraudshop.pipeline.ports import DetectionStore, NotificationSink
from fraudshop.transforms.rules import (
    HISTORY_KINDS,
    merchant_day_rows,
    rule_hits,
    scopes_of_transactions,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RulesOutcome:
    rules: int  # the rules in force over the batch's accounts, holders and merchants
    hits: int


@dataclass(eq=False)
class RuleStep:
    """Per batch: store the transactions at merchants by merchant-day (:meth:`write_merchant_days`, beside
    the transactions' write), and judge the batch against the rules in force now (:meth:`apply`). A hit is
    announced, then stored, then marked done (rule_hit_done); a batch run again skips the hits done, so
    only one that failed between its announcement and its mark is announced again, with the same id."""

    store: DetectionStore
    notifications: NotificationSink

    def write_merchant_days(self, transactions: DataFrame) -> None:
        self.store.write_merchant_days(merchant_day_rows(transactions))

    def apply(self, batch: DataFrame, detected_at: str) -> RulesOutcome:
        """``batch``: the batch's valid transactions, each key once
        (:func:`~fraudshop.transforms.rules.distinct_transactions`), held (computed once, then read by every
        branch of the hits); ``detected_at``: the column of the batch's time they carry."""
        accounts = batch.select("account_no").distinct()
        # Collected: a few rows per batch (none for most accounts), then read by several plans.
        holders, _ = collected(self.store.holders_of_accounts(accounts).select(*ACCOUNT_HOLDER_COLUMNS))
        rules, rule_count = collected(self.store.rules_of_scopes(scopes_of_transactions(batch, holders)))
        if not rule_count:
            return RulesOutcome(0, 0)
        # Read from the collected rows (local relations: no Spark job).
        looking = rules.select("kind", "lookback_days").collect()
        kinds = {row.kind for row in looking}
        longest_lookback = max((row.lookback_days or 0 for row in looking), default=0)
        history = self._history(batch, rules, holders, kinds, longest_lookback)
        hits = rule_hits(
            batch,
            rules,
            holders,
            history,
            self.store.transactions_of_merchant_days,
            self.store.not_done,
            carried=(detected_at,),
            kinds=kinds,
        )
        stamped = hits.withColumn("detected_at", F.col(detected_at)).select(*RULE_HIT_COLUMNS)
        # The hits' branches together have several partitions per core, each a task in every write after.
        stamped = stamped.coalesce(batch.sparkSession.sparkContext.defaultParallelism)
        return RulesOutcome(rule_count, file_hits(self.store, self.notifications, stamped))

    def _history(
        self, batch: DataFrame, rules: DataFrame, holders: DataFrame, kinds: set[str], longest_lookback: int
    ) -> DataFrame | None:
        """The stored transactions the batch's history rules look back at: their accounts', from the start
        of the earliest transaction's UTC month or its longest lookback, whichever is earlier (None without
        such rules)."""
        history_kinds = [kind.value for kind in HISTORY_KINDS]
        if not kinds & set(history_kinds):
            return None
        row = batch.agg(F.min("tranpostdt").alias("earliest")).first()
        assert row is not None
        earliest = row.earliest.replace(tzinfo=UTC)
        since = history_since(earliest, longest_lookback)
        # The accounts those rules watch: theirs, or their holders'.
        looking_back = rules.where(F.col("kind").isin(*history_kinds))
        scope = F.col("scope")
        by_account = looking_back.where(scope == RuleScope.ACCOUNT.value).select(F.col("scope_id").alias("account_no"))
        customers = looking_back.where(scope == RuleScope.CUSTOMER.value).select(F.col("scope_id").alias("customer_id"))
        by_holder = holders.join(customers, "customer_id").select("account_no")
        return self.store.history_of_accounts(by_account.unionByName(by_holder).distinct(), since)
