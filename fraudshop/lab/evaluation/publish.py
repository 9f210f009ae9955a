"""Publishing an evaluation: its figures under ``accuracy`` in the repository's benchmarks/latest.json
(beside the speed figures of ``fraudshop bench``, which keeps them) and the table of docs/evaluation.md,
rendered from that file so that the docs cannot drift from the figures."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from fraudshop.config.resources import packaged_file
from fraudshop.lab.bench.publish import ACCURACY, commit_label, with_table_block

ACCURACY_BEGIN = "<!-- accuracy:begin -->"
ACCURACY_END = "<!-- accuracy:end -->"
TABLE_TEMPLATE = "accuracy_table.md.j2"
#: Shown for a figure that is undefined (a constant signal's Card Precision).
UNDEFINED = "-"
_TEMPLATES = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


def write_accuracy(figures: Mapping[str, Any], directory: Path) -> Path:
    """Put ``figures`` under ``accuracy`` in ``directory``/latest.json, keeping the rest of the file."""
    latest = directory / "latest.json"
    directory.mkdir(parents=True, exist_ok=True)
    current = json.loads(latest.read_text()) if latest.exists() else {}
    latest.write_text(json.dumps({**current, ACCURACY: dict(figures)}, indent=2) + "\n")
    return latest


def _cell(value: float | None) -> str:
    return UNDEFINED if value is None else f"{value:.4f}"


def render_accuracy_block(figures: Mapping[str, Any]) -> str:
    """docs/evaluation.md's block (between the markers) for an evaluation's figures."""
    rows = [
        {
            "signal": signal["signal"] + (" (constant)" if signal["constant"] else ""),
            "auc_roc": _cell(signal["auc_roc"]),
            "average_precision": _cell(signal["average_precision"]),
            "card_precision": _cell(signal["card_precision_at_100"]),
        }
        for signal in figures["signals"].values()
    ]
    template = _TEMPLATES.from_string(
        packaged_file(__package__ or "fraudshop.lab.evaluation", TABLE_TEMPLATE).read_text()
    )
    return template.render(
        caption=f"run of {figures['finished_at']}{commit_label(figures.get('commit'))}",
        rows=rows,
        minutes=round(figures["replayed"]["seconds"] / 60),
        **{key: figures[key] for key in ("test", "replayed", "model", "calibration")},
    )


def update_evaluation_pages(pages: Iterable[Path], latest: Path) -> None:
    """Rewrite the figures of ``pages`` (the README's and docs/evaluation.md's) from ``latest``'s
    (benchmarks/latest.json) accuracy."""
    block = render_accuracy_block(json.loads(latest.read_text())[ACCURACY])
    for page in pages:
        page.write_text(with_table_block(page.read_text(), block, ACCURACY_BEGIN, ACCURACY_END))
