"""`fraudshop bench --authorize --smoke` on the real stack: the API is seeded and served, every request of the
measured phase is answered, and the figures are well-formed and land under `authorize` in latest.json beside
what was there. No latency is asserted: it depends on the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudshop.cli import main
from fraudshop.config import Config
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration

LATENCY_KEYS = {"p50", "p95", "p99", "mean", "max"}


def test_the_authorize_benchmark_answers_every_request_and_publishes_its_figures(
    stack_config: Config, tmp_path: Path
) -> None:
    overrides = [argument for setting in TEST_STACK_SETTINGS for argument in ("--set", setting)]
    benchmarks = tmp_path / "benchmarks"
    benchmarks.mkdir()
    (benchmarks / "latest.json").write_text(json.dumps({"capacity_txn_per_s": 1.0, "accuracy": {"kept": True}}))
    command = ["bench", "--authorize", "--smoke", "--output", str(tmp_path), "--write-benchmarks", str(benchmarks)]
    assert main([*command, *overrides]) == 0

    result = json.loads((tmp_path / "authorize.json").read_text())
    plan = result["plan"]
    expected = int(plan["rate"] * plan["seconds"])
    assert result["requests"] == expected and result["statuses"] == {"200": expected}
    assert sum(result["decisions"].values()) == expected
    assert set(result["decisions"]) <= {"allow", "confirm", "block"}
    assert set(result["latency_ms"]) == LATENCY_KEYS
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"] <= result["latency_ms"]["p99"]
    assert result["reached_per_s"] > 0 and result["api_cpu_ms_per_request"] > 0
    light = result["light"]
    assert light["statuses"] == {"200": int(plan["light_rate"] * plan["seconds"])}
    assert sum(light["decisions"].values()) == light["requests"] and set(light["latency_ms"]) == LATENCY_KEYS
    floor = result["health_floor"]
    assert floor["statuses"] == {"200": floor["requests"]} and set(floor["latency_ms"]) == LATENCY_KEYS
    assert isinstance(result["target"]["met"], bool) and result["target"]["value"] == result["latency_ms"]["p99"]
    assert result["stored_transactions"] == plan["history_per_account"] * plan["workload"]["accounts"]

    latest = json.loads((benchmarks / "latest.json").read_text())
    assert latest["capacity_txn_per_s"] == 1.0 and latest["accuracy"] == {"kept": True}
    assert {key: value for key, value in latest["authorize"].items() if key != "commit"} == result
