"""The transaction vector in Spark (transforms/features.py) is the plain function's (model/features.py):
the same context and the same vector, to the bit, for the same transactions and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from fraudshop.model.features import (
    CHANGE_EVENT,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    TRANSACTION_EVENT,
    TRANSACTION_INPUTS,
    transaction_context,
    vectors_of,
)
from fraudshop.transforms.features import VECTOR, VECTOR_SCHEMA, transaction_vectors

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TRANSACTION_SCHEMA = (
    "account_no string, tranpostdt timestamp, tranid string, amount double, merchant_id string, "
    "merchant_category string, channel string"
)
EVENT_SCHEMA = "account_no string, tranpostdt timestamp, tranid string, amount double, merchant_id string, event string"


def workload() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twelve accounts' batch transactions, some at the same instant, and their history and changes."""
    batch: list[tuple[object, ...]] = []
    known: list[tuple[object, ...]] = []
    for number in range(12):
        account = f"ACC{number:02d}"
        for step in range(number % 4 + 1):
            merchant = None if step == 3 else f"M{(number + step) % 5}"
            batch.append(
                (account, AT + timedelta(seconds=step // 2), f"t{number}-{step}", 3.0 * step + number, merchant,
                 "5999" if merchant else None, ("pos", "online", "atm", None)[step])
            )  # fmt: skip
        for day in range(0, 40, 3):
            known.append(
                (account, AT - timedelta(days=day, minutes=number), f"h{number}-{day}", 10.0 + day, f"M{day % 7}",
                 TRANSACTION_EVENT)
            )  # fmt: skip
        if number % 3 == 0:
            known.append((account, AT - timedelta(hours=number), "", float("nan"), None, CHANGE_EVENT))
    return pd.DataFrame(batch, columns=list(TRANSACTION_INPUTS)), pd.DataFrame(known, columns=list(EVENT_COLUMNS))


def test_the_stream_and_the_plain_function_give_the_same_context_and_vector(spark: SparkSession) -> None:
    transactions, events = workload()
    in_spark = transaction_vectors(
        spark.createDataFrame(transactions, TRANSACTION_SCHEMA), spark.createDataFrame(events, EVENT_SCHEMA)
    )
    # Arrow hands a missing value (NaN in pandas) to Spark as null.
    context = transaction_context(transactions, events).astype(object)
    context = context.where(context.notna(), None)
    expected = pd.concat([transactions[["account_no", "tranpostdt", "tranid"]], context], axis=1).assign(
        **{VECTOR: [vector.tolist() for vector in vectors_of(transactions, events)]}
    )
    assert in_spark.rdd.getNumPartitions() > 1  # accounts spread over partitions, each computed apart
    assert_df_equality(
        in_spark,
        spark.createDataFrame(expected, VECTOR_SCHEMA),
        ignore_row_order=True,
        allow_nan_equality=True,
    )


def test_every_batch_transaction_gets_a_row_and_no_event_does(spark: SparkSession) -> None:
    transactions, events = workload()
    rows = transaction_vectors(
        spark.createDataFrame(transactions, TRANSACTION_SCHEMA), spark.createDataFrame(events, EVENT_SCHEMA)
    ).collect()
    assert sorted(row.tranid for row in rows) == sorted(transactions["tranid"])
    assert all(len(row[VECTOR]) == 30 for row in rows)
    assert {name for name in CONTEXT_COLUMNS} <= set(rows[0].asDict())


def test_an_empty_batch_gives_no_rows(spark: SparkSession) -> None:
    empty: DataFrame = spark.createDataFrame([], TRANSACTION_SCHEMA)
    assert transaction_vectors(empty, spark.createDataFrame([], EVENT_SCHEMA)).count() == 0
