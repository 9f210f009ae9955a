"""`fraudshop bench --authorize --smoke` on the real stack: the API is seeded and served, every request of the
measured phase is answered, and the figures are well-formed and land under `authorize` in latest.json beside
what was there. The API runs two workers (api.workers), so the path that rebuilds the config in each worker
and sums their CPU is the one measured. No latency is asserted: it depends on the machine."""

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
    settings = [*TEST_STACK_SETTINGS, "api.workers=2"]
    overrides = [argument for setting in settings for argument in ("--set", setting)]
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
    assert result["reached_per_s"] > 0 and result["api_cpu_ms_per_request"] > 0 and result["api_workers"] == 2
    cpu = result["cpu_ms_per_request"]
    assert (
        set(cpu) == {"api", "cassandra", "load generator", "machine"} and cpu["api"] == result["api_cpu_ms_per_request"]
    )
    assert cpu["cassandra"] > 0 and cpu["load generator"] > 0 and cpu["machine"] >= cpu["api"]
    assert 0 < result["cores_busy"] <= result["cores"] + 0.1  # (psutil's tick granularity)
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
