"""Writing the rule's alerts: upsert them, then delete the rows they supersede."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.model.tables import ALERT_KEY, CUST_FRAUD_COLUMNS
from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.ports import DetectionStore
from fraudshop.transforms.detection import SUPERSEDED_CUSTOMERS


def write_alerts(store: DetectionStore, alerts: DataFrame, detected_at: datetime | Column) -> int:
    """Returns how many alerts were written."""
    at = detected_at if isinstance(detected_at, Column) else F.lit(detected_at)
    with computed_once(alerts.withColumn("detected_at", at)) as stamped:  # written to two tables
        written = Observation()
        observed = stamped.observe(
            written,
            F.count(F.lit(1)).alias("alerts"),
            F.count(F.when(F.size(SUPERSEDED_CUSTOMERS) > 0, True)).alias("superseding"),
        )
        store.write_alerts(observed.select(*CUST_FRAUD_COLUMNS))
        counts = written.get
        if counts["superseding"]:  # rare: a customer's alert now belongs to another customer
            stale = (
                stamped.where(F.size(SUPERSEDED_CUSTOMERS) > 0)
                .select(F.explode(SUPERSEDED_CUSTOMERS).alias(ALERT_KEY[0]), *ALERT_KEY[1:])
                .collect()
            )
            store.delete_alerts([(row[0], row[1], row[2]) for row in stale])  # in ALERT_KEY order
        return int(counts["alerts"])
