"""The benchmark's outputs: the JSON of every figure and a small PNG (event→alert latency over
time, one series per streaming system; each system's backlog capacity against the write ceiling)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fraudshop.lab.bench.figures import BACKLOG, CAPACITY, CEILING_RATE
from fraudshop.lab.bench.outcome import LatencySample
from fraudshop.lab.bench.plan import CEILING


def write_json(result: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def write_plot(
    systems: Mapping[str, Mapping[str, Any]], samples: Mapping[str, Sequence[LatencySample]], path: Path
) -> None:
    figure = Figure(figsize=(10, 4), dpi=90, layout="constrained")
    latency, capacity = figure.subplots(1, 2)
    streaming = [name for name in systems if name != CEILING]
    for name in streaming:
        phases = systems[name]["phases"]
        start = phases[0]["started_at"]
        # Not the backlog's: sent while the job was stopped, their latency is the wait for its restart.
        streamed = [p for p in phases if p["name"] != BACKLOG]
        shown = [s for s in samples[name] if any(p["started_at"] <= s.event_at < p["sent_until"] for p in streamed)]
        latency.scatter([s.event_at - start for s in shown], [s.latency for s in shown], s=3, label=name)
    latency.set(title="event → alert latency", xlabel="seconds since the warm-up started", ylabel="latency (s)")
    latency.set_yscale("log")
    bars = capacity.bar(streaming, [systems[name][CAPACITY] or 0.0 for name in streaming], color="tab:blue")
    capacity.bar_label(bars, fmt="{:,.0f}")
    if CEILING in systems:
        capacity.axhline(systems[CEILING][CEILING_RATE], linestyle=":", color="grey", label="write ceiling")
        capacity.legend()
    capacity.set(title="backlog drained", ylabel="txn/s")
    for axes in (latency, capacity):
        axes.grid(alpha=0.3)
    if streaming:
        latency.legend()
    figure.savefig(path)
