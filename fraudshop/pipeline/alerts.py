"""Writing the rule's alerts: upsert them, then delete the rows they supersede."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from fraudshop.model.tables import ALERT_COLUMNS
from fraudshop.pipeline.ports import DetectionStore
from fraudshop.transforms.detection import SUPERSEDED_CUSTOMERS


def write_alerts(store: DetectionStore, alerts: DataFrame, batch_at: datetime) -> int:
    """Returns how many alerts were written."""
    alerts = alerts.withColumn("detected_at", F.lit(batch_at)).persist()  # written to two tables
    try:
        written = Observation()
        observed = alerts.observe(
            written,
            F.count(F.lit(1)).alias("alerts"),
            F.count(F.when(F.size(SUPERSEDED_CUSTOMERS) > 0, True)).alias("superseding"),
        )
        store.write_alerts(observed.select(*ALERT_COLUMNS, "detected_at"))
        counts = written.get
        if counts["superseding"]:  # rare: a customer's alert now belongs to another customer
            stale = (
                alerts.where(F.size(SUPERSEDED_CUSTOMERS) > 0)
                .select(F.explode(SUPERSEDED_CUSTOMERS).alias("customer_id"), "tranpostdt", "tranid")
                .collect()
            )
            store.delete_alerts([(row.customer_id, row.tranpostdt, row.tranid) for row in stale])
        return int(counts["alerts"])
    finally:
        alerts.unpersist()
