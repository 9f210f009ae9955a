"""The fraud rule: a transaction within the change window after a profile change on its account."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

#: Columns of a flagged transaction, the content of bank.cust_fraud without detected_at.
ALERT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "tranpostdt",
    "tranid",
    "account_no",
    "amount",
    "change_type",
    "last_updated",
    "qualifying_changes",
    "source_topic",
    "source_partition",
    "source_offset",
)
_TRANSACTION_KEY = ("account_no", "tranpostdt", "tranid")


def flag_changed_customer_transactions(
    transactions: DataFrame,
    changes: DataFrame,
    window_seconds: int,
) -> DataFrame:
    """One row per transaction T for which some change C on the same account has
    ``C.last_updated <= T.tranpostdt < C.last_updated + window_seconds``.

    The row names the most recent qualifying change (``last_updated``, ``change_type`` and the
    ``customer_id`` recorded with it) and how many distinct changes qualified. Duplicated
    transaction records (a replayed Kafka record) collapse into one row whose lineage is the
    earliest record, so the result does not depend on how often a record was delivered.
    """
    t = transactions.alias("t")
    c = changes.select("account_no", "last_updated", "change_type", "customer_id").alias("c")
    window_end = F.col("c.last_updated") + F.expr(f"INTERVAL {int(window_seconds)} SECONDS")
    matches = t.join(
        c,
        (F.col("t.account_no") == F.col("c.account_no"))
        & (F.col("c.last_updated") <= F.col("t.tranpostdt"))
        & (F.col("t.tranpostdt") < window_end),
    )
    flagged = matches.groupBy(*[F.col(f"t.{name}").alias(name) for name in _TRANSACTION_KEY]).agg(
        F.max(F.struct("c.last_updated", "c.change_type", "c.customer_id")).alias("change"),
        F.countDistinct("c.last_updated", "c.change_type").cast("int").alias("qualifying_changes"),
        F.min(F.struct("t.source_topic", "t.source_partition", "t.source_offset", "t.amount")).alias("record"),
    )
    return flagged.select(
        F.col("change.customer_id").alias("customer_id"),
        "tranpostdt",
        "tranid",
        "account_no",
        F.col("record.amount").alias("amount"),
        F.col("change.change_type").alias("change_type"),
        F.col("change.last_updated").alias("last_updated"),
        "qualifying_changes",
        F.col("record.source_topic").alias("source_topic"),
        F.col("record.source_partition").alias("source_partition"),
        F.col("record.source_offset").alias("source_offset"),
    )
