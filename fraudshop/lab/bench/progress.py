"""The jobs' per-micro-batch progress files (JSON lines), read back: records consumed so far and
where batch time went.

The detection job writes one line per batch with Spark's ``duration_ms`` and its own
``fraudshop`` counts and ``step_ms``; the baseline one line per batch of each of its two queries
(``query``, ``num_input_rows``: Kafka records, its only source)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraudshop.lab.bench.stats import summary
from fraudshop.pipeline.stream import QUERY_NAME


@dataclass(frozen=True)
class Batch:
    query: str
    batch_id: int
    #: Spark's progress timestamp: when the batch's trigger fired.
    started_at: datetime
    ended_at: datetime
    kafka_records: int
    duration_ms: dict[str, float]
    step_ms: dict[str, float] = field(default_factory=dict)
    #: Records of the (scratch, from offset 0) topic the query had consumed after this batch, from
    #: its Kafka end offsets; None in a line without them.
    consumed: int | None = None


def parse_batch(line: dict[str, Any]) -> Batch:
    started = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    duration_ms = {key: float(value) for key, value in line["duration_ms"].items()}
    if line["query"] == QUERY_NAME:
        # A batch reported without the job's counts (a failed attempt) finished none.
        fraudshop = line["fraudshop"] or {}
        kafka_records = int(fraudshop.get("kafka_records", 0))
    else:
        fraudshop = {}
        kafka_records = int(line["num_input_rows"])
    return Batch(
        query=line["query"],
        batch_id=int(line["batch_id"]),
        started_at=started,
        ended_at=started + timedelta(milliseconds=duration_ms.get("triggerExecution", 0.0)),
        kafka_records=kafka_records,
        duration_ms=duration_ms,
        step_ms={key: float(value) for key, value in fraudshop.get("step_ms", {}).items()},
        consumed=_consumed(line.get("end_offsets")),
    )


def _consumed(end_offsets: list[Any] | None) -> int | None:
    """Sum of the Kafka end offsets of a progress line's sources (topic → partition → offset)."""
    if not end_offsets:
        return None
    return sum(
        int(offset)
        for source in end_offsets
        if isinstance(source, dict)
        for partitions in source.values()
        if isinstance(partitions, dict)
        for offset in partitions.values()
    )


def read_batches(path: Path) -> list[Batch]:
    """The batches written so far; a line still being written is left for the next read, and a
    line that reports no batch (no ``batch_id``) is not one."""
    if not path.exists():
        return []
    batches = []
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and "batch_id" in line:
            batches.append(parse_batch(line))
    return batches


def records_done(batches: Sequence[Batch], queries: Sequence[str]) -> int:
    """Kafka records every one of the job's ``queries`` has finished (the slowest one's count):
    a job with two queries has processed a record only when both have. From the furthest end
    offsets a query reported when its lines carry them: a job killed between a batch's commit
    and its progress line leaves that batch without a line, and a sum of row counts would never
    reach the total."""
    per_query: dict[str, int] = defaultdict(int)
    furthest: dict[str, int] = {}
    for batch in batches:
        per_query[batch.query] += batch.kafka_records
        if batch.consumed is not None:
            furthest[batch.query] = max(furthest.get(batch.query, 0), batch.consumed)
    return min(furthest.get(query, per_query[query]) for query in queries)


def breakdown(batches: Sequence[Batch], since: datetime, until: datetime) -> dict[str, Any]:
    """Per query, the batches with Kafka records that ended in [since, until): how many, and a
    summary (ms) of each of Spark's durations and each of the job's own steps."""
    result: dict[str, Any] = {}
    by_query: dict[str, list[Batch]] = defaultdict(list)
    for batch in batches:
        if batch.kafka_records and since <= batch.ended_at < until:
            by_query[batch.query].append(batch)
    for query, chosen in sorted(by_query.items()):
        busy_seconds = sum(batch.duration_ms.get("triggerExecution", 0.0) for batch in chosen) / 1000
        result[query] = {
            "batches": len(chosen),
            # Records per second of batch time: the query's capacity when batches run back to back.
            "records_per_busy_second": round(sum(batch.kafka_records for batch in chosen) / busy_seconds, 1)
            if busy_seconds
            else None,
            "records_per_batch": summary([batch.kafka_records for batch in chosen], 0),
            "duration_ms": _summaries([batch.duration_ms for batch in chosen]),
            "step_ms": _summaries([batch.step_ms for batch in chosen]),
        }
    return result


def _summaries(maps: Sequence[dict[str, float]]) -> dict[str, Any]:
    keys = sorted({key for timings in maps for key in timings})
    return {key: summary([timings[key] for timings in maps if key in timings], 1) for key in keys}
