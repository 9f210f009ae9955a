"""Publishing a run: the commit it measured, the repository's benchmarks/ (latest.json,
latest.png, history.jsonl) and the benchmark table of docs/benchmark.md, rendered from
benchmarks/latest.json so that the docs cannot drift from the figures."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from fraudshop.config.resources import packaged_file
from fraudshop.lab.bench.figures import (
    CAPACITY,
    CAPACITY_RATIO,
    CEILING_RATE,
    COSTED_STEPS,
    FIXED_COST,
    HEADLINE_KEYS,
    LATENCY,
    RECOVERY_TIME,
    SMALL_BATCH_MAX_RECORDS,
    STEP_COST,
    TARGETS,
    rate_key,
)
from fraudshop.lab.bench.plan import CEILING

#: The key of benchmarks/latest.json holding `fraudshop evaluate`'s detection figures.
ACCURACY = "accuracy"
#: Where `fraudshop bench --authorize` puts its figures in latest.json.
AUTHORIZE = "authorize"
BENCH_BEGIN = "<!-- bench:begin -->"
BENCH_END = "<!-- bench:end -->"
TABLE_TEMPLATE = "benchmark_table.md.j2"
#: Shown for a figure the run did not measure.
MISSING = "-"

# No autoescaping: Markdown, not HTML. StrictUndefined: a placeholder left unfilled is an error.
_TEMPLATES = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def source_commit(directory: Path | None = None) -> dict[str, Any] | None:
    """The commit of the checkout this code runs from and whether its work tree differs from it
    (None when it is not a git checkout, e.g. an installed wheel)."""
    where = str(directory or Path(__file__).parent)
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "-C", where, "status", "--porcelain"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def history_line(result: Mapping[str, Any]) -> dict[str, Any]:
    """One run's summary for benchmarks/history.jsonl: fraudshop's headline figures, the baseline's,
    which targets were met, and whether both were correct."""
    return {
        "date": result["started_at"],
        "commit": result.get("commit"),
        **{key: result.get(key) for key in HEADLINE_KEYS},
        "baseline": result.get("baseline"),
        "targets_met": {name: target["met"] for name, target in result.get("targets", {}).items()},
        "correct": result["correctness_passed"],
    }


def write_benchmarks(output: Path, directory: Path, result: Mapping[str, Any]) -> None:
    """Copy a run's bench.json and bench.png from ``output`` to ``directory`` as latest.json and
    latest.png, and append its summary to history.jsonl."""
    directory.mkdir(parents=True, exist_ok=True)
    latest = directory / "latest.json"
    # The figures of `fraudshop evaluate` and `fraudshop bench --authorize` live in the same file: kept.
    kept = json.loads(latest.read_text()) if latest.exists() else {}
    figures = json.loads((output / "bench.json").read_text())
    others = {key: kept[key] for key in (ACCURACY, AUTHORIZE) if key in kept}
    latest.write_text(json.dumps({**figures, **others}, indent=2) + "\n")
    shutil.copyfile(output / "bench.png", directory / "latest.png")
    with (directory / "history.jsonl").open("a") as history:
        history.write(json.dumps(history_line(result)) + "\n")


def _number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}{unit}"


def _latencies(figures: Mapping[str, Any] | None) -> str:
    if not figures or figures.get("p95") is None:
        return MISSING
    return " / ".join(f"{figures[q]:.2f}" for q in ("p50", "p95", "p99")) + " s"


def _correctness(system: Mapping[str, Any] | None) -> str:
    if not system:
        return MISSING
    checked = system["correctness"]
    if "rows_stored" in checked:  # the ceiling
        return f"{checked['rows_stored']:,} of {checked['rows_written']:,} rows stored"
    verdict = "exact" if checked["passed"] else "NOT exact"
    return f"{checked['transactions_stored']:,} transactions, {checked['alerts_stored']:,} alerts, {verdict}"


def _target(result: Mapping[str, Any], *names: str) -> str:
    """The targets ``names`` as the table shows them: "≤ 1.5 (p95): met"."""
    checked = result.get("targets", {})
    parts = []
    for target in TARGETS:
        if target.name in names:
            label = f" ({target.path[-1]})" if target.path[0] == LATENCY else ""
            bound = f"{'≥' if target.at_least else '≤'} {target.bound:g}{'' if target.at_least else ' s'}{label}"
            met = checked.get(target.name, {}).get("met")
            parts.append(f"{bound}: {MISSING if met is None else 'met' if met else 'not met'}")
    return ", ".join(parts)


def table_rows(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """The table's rows from a bench.json (a figure a run did not measure shows as MISSING)."""
    systems: Mapping[str, Any] = result.get("systems", {})
    ours, theirs = systems.get("fraudshop"), systems.get("baseline")
    baseline: Mapping[str, Any] = result.get("baseline") or {}
    plan = result.get("plan", {})
    backlog = plan.get("backlog")
    ceiling = systems.get(CEILING)

    def row(label: str, fraudshop: str, baseline_cell: str, target: str = "") -> dict[str, str]:
        return {"label": label, "fraudshop": fraudshop, "baseline": baseline_cell, "target": target}

    rows = [
        row(
            f"write ceiling: one connector write of {_number(ceiling and ceiling['rows'])} rows (rows/s)",
            _number(result.get(CEILING_RATE)),
            "",
        ),
        row(
            f"capacity: a backlog of {_number(backlog)} transactions drained (txn/s)",
            _number(result.get(CAPACITY)),
            _number(baseline.get(CAPACITY)),
        ),
        row(
            "capacity / ceiling",
            _number(result.get(CAPACITY_RATIO), digits=2),
            _number(baseline.get(CAPACITY_RATIO), digits=2),
            _target(result, CAPACITY_RATIO),
        ),
    ]
    ours_latency, theirs_latency = result.get(LATENCY) or {}, baseline.get(LATENCY) or {}
    measured_rates = {*ours_latency, *theirs_latency} or {rate_key(2000), rate_key(200)}
    for rate in sorted(measured_rates, key=float, reverse=True):
        rate_targets = [t.name for t in TARGETS if t.path[0] == LATENCY and t.path[1] == rate]
        rows.append(
            row(
                f"event→alert p50 / p95 / p99 at {float(rate):,.0f} txn/s offered",
                _latencies(ours_latency.get(rate)),
                _latencies(theirs_latency.get(rate)),
                _target(result, *rate_targets),
            )
        )
    for rate, cost in sorted((result.get(STEP_COST) or {}).items(), key=lambda item: float(item[0]), reverse=True):
        rows.append(
            row(
                f"cost per batch at {float(rate):,.0f} txn/s (median ms): rules / similarity / profile-change rule / "
                "transactions",
                " / ".join(_number(cost.get(step)) for step in COSTED_STEPS) if cost else MISSING,
                "",
            )
        )
    rows += [
        row(
            f"fixed cost: median batch of 1-{SMALL_BATCH_MAX_RECORDS} records",
            _number(result.get(FIXED_COST), " s", 2),
            _number(baseline.get(FIXED_COST), " s", 2),
            _target(result, FIXED_COST),
        ),
        row(
            "recovery: kill -9 to the next completed batch",
            _number(result.get(RECOVERY_TIME), " s", 1),
            _number(baseline.get(RECOVERY_TIME), " s", 1),
            _target(result, RECOVERY_TIME),
        ),
        row("correctness over everything sent", _correctness(ours), _correctness(theirs), "exact"),
    ]
    return rows


def commit_label(commit: Mapping[str, Any] | None) -> str:
    """ ", commit abc1234" (" with local changes" when its tree differed) of a run's
    :func:`source_commit`, nothing when it ran outside a checkout."""
    if not commit:
        return ""
    return f", commit {commit['sha'][:7]}{' with local changes' if commit['dirty'] else ''}"


def _caption(result: Mapping[str, Any]) -> str:
    started = datetime.fromisoformat(result["started_at"]).strftime("%Y-%m-%d %H:%M UTC")
    machine = result.get("machine", {})
    cpus = machine.get("nproc", machine.get("cpus"))
    return f"run of {started}{commit_label(result.get('commit'))}; {cpus} CPUs, {machine.get('memory_gib')} GiB"


def render_table_block(result: Mapping[str, Any]) -> str:
    """The benchmark page's table block (between the markers) for a bench.json."""
    template = _TEMPLATES.from_string(packaged_file(__package__ or "fraudshop.lab.bench", TABLE_TEMPLATE).read_text())
    return template.render(caption=_caption(result), rows=table_rows(result))


def with_table_block(page: str, block: str, begin_marker: str = BENCH_BEGIN, end_marker: str = BENCH_END) -> str:
    """``page`` with the text between its two markers replaced by ``block``."""
    before, begin, rest = page.partition(begin_marker)
    _, end, after = rest.partition(end_marker)
    if not begin or not end:
        raise ValueError(f"the page has no {begin_marker} ... {end_marker} block")
    return f"{before}{begin_marker}\n{block}{end_marker}{after}"


def update_benchmark_page(page: Path, latest: Path) -> None:
    """Rewrite ``page``'s benchmark table (docs/benchmark.md's) from the run in ``latest`` (benchmarks/latest.json)."""
    block = render_table_block(json.loads(latest.read_text()))
    page.write_text(with_table_block(page.read_text(), block))


def write_authorize_figures(directory: Path, result: Mapping[str, Any]) -> None:
    """``result`` (with the commit it measured) under :data:`AUTHORIZE` in ``directory/latest.json``, the rest kept."""
    latest = directory / "latest.json"
    kept = json.loads(latest.read_text()) if latest.exists() else {}
    latest.write_text(json.dumps({**kept, AUTHORIZE: {**result, "commit": source_commit()}}, indent=2) + "\n")
