"""The benchmark's outputs: the JSON of every figure and a small PNG (event→alert latency over
time; throughput against offered rate), one series per system."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fraudshop.lab.bench.figures import WARM_UP
from fraudshop.lab.bench.outcome import LatencySample


def write_json(result: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def write_plot(
    systems: Mapping[str, Mapping[str, Any]], samples: Mapping[str, Sequence[LatencySample]], path: Path
) -> None:
    figure = Figure(figsize=(10, 4), dpi=90, layout="constrained")
    latency, throughput = figure.subplots(1, 2)
    for name, figures in systems.items():
        start = figures["phases"][0]["started_at"]
        latency.scatter(
            [s.event_at - start for s in samples[name]], [s.latency for s in samples[name]], s=3, label=name
        )
        phases = [phase for phase in figures["phases"] if phase["name"] != WARM_UP]
        throughput.plot([p["send_rate"] for p in phases], [p["throughput_tps"] for p in phases], marker="o", label=name)
    latency.set(title="event → alert latency", xlabel="seconds since the warm-up started", ylabel="latency (s)")
    latency.set_yscale("log")
    offered = [p["send_rate"] for figures in systems.values() for p in figures["phases"]]
    if offered:
        throughput.plot([0, max(offered)], [0, max(offered)], linestyle=":", color="grey", label="offered")
    throughput.set(title="throughput vs offered rate", xlabel="offered (txn/s, as sent)", ylabel="processed (txn/s)")
    for axes in (latency, throughput):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.savefig(path)
