"""The fraud rule: a transaction within the change window after a profile change on its account."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraudshop.model.tables import ALERT_COLUMNS, PREVIOUS_CUSTOMER, TRANSACTION_KEY

#: Also returned by the rule: customers of other qualifying changes, whose cust_fraud row for the
#: transaction (written before a newer change of another owner was known) is stale.
SUPERSEDED_CUSTOMERS = "superseded_customers"


def _in_window(transaction: str, change: str, window_seconds: int) -> Column:
    """``change.last_updated <= transaction.tranpostdt < change.last_updated + window``, same account."""
    last_updated = F.col(f"{change}.last_updated")
    tranpostdt = F.col(f"{transaction}.tranpostdt")
    return (
        (F.col(f"{transaction}.account_no") == F.col(f"{change}.account_no"))
        & (last_updated <= tranpostdt)
        & (tranpostdt < last_updated + F.expr(f"INTERVAL {int(window_seconds)} SECONDS"))
    )


def transactions_in_change_windows(transactions: DataFrame, changes: DataFrame, window_seconds: int) -> DataFrame:
    """The transactions inside the window of at least one of ``changes`` (each transaction once)."""
    return transactions.alias("t").join(
        changes.select("account_no", "last_updated").alias("c"), _in_window("t", "c", window_seconds), "left_semi"
    )


def flag_changed_customer_transactions(
    transactions: DataFrame, changes: DataFrame, window_seconds: int, carried: tuple[str, ...] = ()
) -> DataFrame:
    """One row (:data:`ALERT_COLUMNS`, :data:`SUPERSEDED_CUSTOMERS`, then the ``carried`` columns of the
    transactions, their greatest value) per transaction in the window of a change: the most recent such
    change (ties broken by change type) and how many distinct changes qualified. Independent of arrival
    order and duplicates: a replayed record collapses into one row whose lineage is the earliest record."""
    c = changes.select("account_no", "last_updated", "change_type", "customer_id").alias("c")
    matches = transactions.alias("t").join(c, _in_window("t", "c", window_seconds))
    flagged = matches.groupBy(*[F.col(f"t.{name}").alias(name) for name in TRANSACTION_KEY]).agg(
        F.max(F.struct("c.last_updated", "c.change_type", "c.customer_id")).alias("change"),
        # Not countDistinct: Spark plans a distinct aggregate with a shuffle of its own.
        F.size(F.collect_set(F.struct("c.last_updated", "c.change_type"))).alias("qualifying_changes"),
        F.collect_set("c.customer_id").alias("qualifying_customers"),
        F.min(F.struct("t.source_topic", "t.source_partition", "t.source_offset", "t.amount")).alias("record"),
        *[F.max(f"t.{name}").alias(name) for name in carried],
    )
    alerts = flagged.select(
        *TRANSACTION_KEY, "change.*", "qualifying_changes", "record.*", "qualifying_customers", *carried
    )
    others = F.filter("qualifying_customers", lambda customer: customer != F.col("customer_id"))
    return alerts.select(*ALERT_COLUMNS, F.array_sort(others).alias(SUPERSEDED_CUSTOMERS), *carried)


def supersede_previous_owners(alerts: DataFrame, recorded_changes: DataFrame, window_seconds: int) -> DataFrame:
    """``alerts`` with :data:`SUPERSEDED_CUSTOMERS` also naming the previous owner of each of ``recorded_changes``
    whose window holds the transaction: an owner correction leaves their row stale, and cust_change no longer
    names them. The alert's own customer is never superseded."""
    corrections = recorded_changes.where(F.col(PREVIOUS_CUSTOMER).isNotNull()).select(
        "account_no", "last_updated", PREVIOUS_CUSTOMER
    )
    previous_owners = (
        alerts.select(*TRANSACTION_KEY)
        .alias("t")
        .join(corrections.alias("c"), _in_window("t", "c", window_seconds))
        .groupBy(*[F.col(f"t.{name}").alias(name) for name in TRANSACTION_KEY])
        .agg(F.collect_set(f"c.{PREVIOUS_CUSTOMER}").alias("previous_owners"))
    )
    superseded = F.array_union(
        F.col(SUPERSEDED_CUSTOMERS), F.coalesce("previous_owners", F.array().cast("array<string>"))
    )
    others = F.filter(superseded, lambda customer: customer != F.col("customer_id"))
    joined = alerts.join(previous_owners, list(TRANSACTION_KEY), "left")
    return joined.withColumn(SUPERSEDED_CUSTOMERS, F.array_sort(others)).select(*alerts.columns)
