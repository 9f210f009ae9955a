"""Percentiles and summaries of measured values."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of non-empty ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int | None]:
    """Count, mean, p50, p95, p99 and max of ``values`` (None when there are none)."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), digits),
        **{f"p{q}": round(percentile(values, q), digits) for q in (50, 95, 99)},
        "max": round(max(values), digits),
    }
