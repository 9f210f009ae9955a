"""The desk's two charts, drawn on the server by matplotlib (a dependency already: no chart library to
fetch, nothing for the browser to run) and served as SVG images. They carry no free text from the data, only
numbers, times and the signals' names (the rule kinds the job writes)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

#: One colour per signal, the same on every chart (matplotlib's tab10, in the order of model.desk.SIGNALS).
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _svg(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float) -> Any:
    # The object-oriented API without pyplot: no global state shared between the API's threads.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def alerts_per_hour_svg(counts: Mapping[str, Sequence[int]], signals: Sequence[str]) -> bytes:
    """Stacked bars: each UTC hour's alerts by signal (``counts``: signal -> 24 counts)."""
    figure = _figure(8, 3)
    axes = figure.add_subplot()
    bottom = [0] * 24
    for signal in counts:
        colour = _PALETTE[signals.index(signal) % len(_PALETTE)] if signal in signals else "#999999"
        axes.bar(range(24), counts[signal], bottom=bottom, label=signal, color=colour, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts[signal], strict=True)]
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlim(-0.6, 23.6)
    axes.set_xlabel("hour (UTC)")
    axes.set_ylabel("alerts")
    axes.yaxis.get_major_locator().set_params(integer=True)
    if counts:
        axes.legend(loc="upper left", fontsize="small", frameon=False)
    else:
        axes.text(11.5, 0.5, "no alerts on this day", ha="center", va="center", color="#666666")
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)


def timeline_svg(times: Sequence[datetime], amounts: Sequence[float], flagged: datetime) -> bytes:
    """The account's recent transactions as amount over time, the flagged one marked in red."""
    figure = _figure(8, 2.4)
    axes = figure.add_subplot()
    others = [(t, a) for t, a in zip(times, amounts, strict=True) if t != flagged]
    if others:
        axes.scatter([t for t, _ in others], [a for _, a in others], s=18, color="#1f77b4", label="other transactions")
    mine = [a for t, a in zip(times, amounts, strict=True) if t == flagged]
    if mine:
        axes.scatter([flagged] * len(mine), mine, s=60, color="#d62728", marker="D", label="this transaction")
    axes.set_ylabel("amount")
    axes.legend(loc="upper left", fontsize="small", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.autofmt_xdate()
    return _svg(figure)
