"""Filing a batch's hits, whichever signal found them (the rules, the similarity): announced, then
stored, then marked done, so a batch run again announces again only a hit that failed in between."""

from __future__ import annotations

from pyspark.sql import DataFrame

from fraudshop.pipeline.held import computed_once
from fraudshop.pipeline.ports import DetectionStore, NotificationSink


def file_hits(store: DetectionStore, notifications: NotificationSink, hits: DataFrame) -> int:
    """Announce ``hits`` (RULE_HIT_COLUMNS rows, none of them done), then store them and mark them done;
    return how many."""
    with computed_once(hits) as found:  # read by the notifications and the three tables
        # Counted first, on its own: the count computes the hits once for the writes after it, and an
        # Observation is never reported by the Kafka sink's write.
        count = found.count()
        if count:
            notifications.publish(found)
            store.write_rule_hits(found)
    return count
