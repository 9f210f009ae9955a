"""The fraud-prevention rules' step of a micro-batch: read the rules of the batch's accounts, holders and
merchants (never the whole rule table), what they look back at, find the hits, notify, then store them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.rules import RuleKind, RuleScope
from fraudshop.model.tables import ACCOUNT_HOLDER_COLUMNS, MERCHANT_DAY_KEY, RULE_HIT_COLUMNS
from fraudshop.pipeline.held import collected, computed_once
from fraudshop.pipeline.ports import DetectionStore, NotificationSink
from fraudshop.transforms.rules import (
    HISTORY_COLUMNS,
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
    """Per batch: store the transactions at merchants by merchant-day, then judge the batch against the rules
    in force now. A hit is announced, then stored, then marked done (rule_hit_done); a batch run again skips
    the hits done, so only one that failed between its announcement and its mark is announced again, with
    the same id."""

    store: DetectionStore
    notifications: NotificationSink

    def apply(self, transactions: DataFrame, detected_at: str) -> RulesOutcome:
        """``transactions``: the batch's valid ones; ``detected_at``: the column of the batch's time they carry."""
        self.store.write_merchant_days(merchant_day_rows(transactions))
        accounts = transactions.select("account_no").distinct()
        # Collected: a few rows per batch (none for most accounts), then read by several plans.
        holders, _ = collected(self.store.holders_of_accounts(accounts).select(*ACCOUNT_HOLDER_COLUMNS))
        rules, rule_count = collected(self.store.rules_of_scopes(scopes_of_transactions(transactions, holders)))
        if not rule_count:
            return RulesOutcome(0, 0)
        kinds = {row.kind for row in rules.select("kind").distinct().collect()}
        history = self._history(transactions, rules, holders, kinds)
        merchant_days = self._merchant_days(transactions, rules, kinds)
        hits = rule_hits(
            transactions, rules, holders, history, merchant_days, self.store.done_hits, carried=(detected_at,)
        )
        stamped = hits.withColumn("detected_at", F.col(detected_at)).select(*RULE_HIT_COLUMNS)
        with computed_once(stamped) as found:  # read by the notifications and the three tables
            # Counted first, on its own: the count computes the hits once for the writes after it, and an
            # Observation is never reported by the Kafka sink's write.
            hit_count = found.count()
            if hit_count:
                self.notifications.publish(found)
                self.store.write_rule_hits(found)
        return RulesOutcome(rule_count, hit_count)

    def _history(self, transactions: DataFrame, rules: DataFrame, holders: DataFrame, kinds: set[str]) -> DataFrame:
        """The stored transactions the batch's history rules look back at: their accounts', from the start
        of the earliest transaction's UTC month or its longest lookback, whichever is earlier."""
        history_kinds = [kind.value for kind in HISTORY_KINDS]
        if not kinds & set(history_kinds):
            return transactions.select(*HISTORY_COLUMNS).limit(0)
        looking_back = rules.where(F.col("kind").isin(*history_kinds))
        row = transactions.agg(F.min("tranpostdt").alias("earliest")).first()
        lookback = looking_back.agg(F.max("lookback_days").alias("days")).first()
        assert row is not None and lookback is not None
        earliest = row.earliest.replace(tzinfo=UTC)
        month_start = earliest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        since = min(month_start, earliest - timedelta(days=lookback.days or 0))
        # The accounts those rules watch: theirs, or their holders'.
        scope = F.col("scope")
        by_account = looking_back.where(scope == RuleScope.ACCOUNT.value).select(F.col("scope_id").alias("account_no"))
        customers = looking_back.where(scope == RuleScope.CUSTOMER.value).select(F.col("scope_id").alias("customer_id"))
        by_holder = holders.join(customers, "customer_id").select("account_no")
        return self.store.history_of_accounts(by_account.unionByName(by_holder).distinct(), since)

    def _merchant_days(self, transactions: DataFrame, rules: DataFrame, kinds: set[str]) -> DataFrame:
        """The stored transactions of the batch's merchant-days at the merchants with a daily count."""
        rows = merchant_day_rows(transactions)
        if RuleKind.MERCHANT_DAILY_COUNT.value not in kinds:
            return rows.limit(0)
        counting = rules.where(F.col("kind") == RuleKind.MERCHANT_DAILY_COUNT.value).select(
            F.col("scope_id").alias("merchant_id")
        )
        keys = rows.select(*MERCHANT_DAY_KEY).join(counting.distinct(), "merchant_id").distinct()
        return self.store.transactions_of_merchant_days(keys)
