"""The fraudshop command without a stack: its commands and options, `fraudshop test`'s steps, the
tables it prints, and the API schema's change types."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudshop.cli import build_parser
from fraudshop.cli import main as fraudshop_main
from fraudshop.config import load_config
from fraudshop.io.cassandra.reads import ALERT_SUMMARY_COLUMNS
from fraudshop.io.quarantine import REJECT_LIST_COLUMNS
from fraudshop.lab.console import print_table, render_plain
from fraudshop.model.changes import CHANGE_TYPES
from fraudshop.model.tables import CUST_FRAUD_COLUMNS, LINEAGE_COLUMNS, REJECT_COLUMNS
from fraudshop.service.api import create_app

COMMANDS = (
    "stack",
    "cluster",
    "schema",
    "job",
    "produce",
    "change",
    "profile",
    "rules",
    "hits",
    "cases",
    "model",
    "evaluate",
    "api",
    "alerts",
    "rejects",
    "notifications",
    "demo",
    "faults",
    "bench",
    "slides",
    "test",
)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    (found,) = (action for action in parser._actions if flag in action.option_strings)
    return found


def test_every_documented_command_is_there_with_the_config_options() -> None:
    commands = subcommands(build_parser())
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        assert option(parser, "--set").dest == "overrides", name
        assert option(parser, "--config").dest == "config", name


def test_change_types_on_the_command_line_and_in_the_api_schema_are_the_models() -> None:
    assert option(subcommands(build_parser())["change"], "--type").choices == CHANGE_TYPES
    schema = create_app(load_config(overrides=["api.token=t"], environ={})).openapi()
    assert schema["components"]["schemas"]["ChangeType"]["enum"] == list(CHANGE_TYPES)


def test_python_m_fraudshop_cli_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fraudshop.cli", "change", "--help"], capture_output=True, text=True, check=True
    )
    assert "--type {" + ",".join(CHANGE_TYPES) + "}" in result.stdout


def test_fraudshop_test_lints_types_checks_the_layers_then_runs_pytest_in_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], Path]] = []

    def call(step: list[str], cwd: Path) -> int:
        calls.append((step, cwd))
        return 0

    monkeypatch.setattr(subprocess, "call", call)
    assert fraudshop_main(["test", "-q", "tests/unit/test_cli.py"]) == 0
    checkout = Path(__file__).resolve().parents[2]
    assert {cwd for _, cwd in calls} == {checkout}  # where pyproject.toml is, not the package's folder
    assert [Path(step[0]).name if len(step) == 1 else " ".join(step[1:]) for step, _ in calls] == [
        "-m ruff check .",
        "-m ruff format --check .",
        "-m mypy",
        "lint-imports",
        "-m pytest -q tests/unit/test_cli.py",
    ]
    assert Path(calls[3][0][0]).is_file()  # the script beside this interpreter


def test_fraudshop_test_stops_at_the_first_failing_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def failing_call(step: list[str], cwd: Path) -> int:
        calls.append(step)
        return 3

    monkeypatch.setattr(subprocess, "call", failing_call)
    assert fraudshop_main(["test"]) == 3
    assert len(calls) == 1


def test_a_table_for_a_pipe_is_plain_aligned_text() -> None:
    rows = [
        ["CUST-3", datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC), 99.5, 3, None],
        ["CUST-30", datetime(2026, 11, 23, 9, 31), 1234.0, 12, "x"],
    ]
    assert render_plain(("customer_id", "tranpostdt", "amount", "qualifying_changes", "note"), rows).splitlines() == [
        "customer_id  tranpostdt                amount  qualifying_changes  note",
        "------------ ------------------------ -------- ------------------- ----",
        "CUST-3       2026-11-23 09:30:00.123    99.50                   3",
        "CUST-30      2026-11-23 09:31:00.000  1234.00                  12  x",
    ]


def test_print_table_to_a_file_is_the_plain_table(capsys: pytest.CaptureFixture[str]) -> None:
    long_value = "y" * 300  # wider than any terminal: not wrapped, not cut
    print_table(("reason", "records"), [["invalid_amount", 1], [long_value, 22]])
    assert capsys.readouterr().out.splitlines() == [
        *render_plain(("reason", "records"), [["invalid_amount", 1], [long_value, 22]]).splitlines()
    ]
    assert long_value in render_plain(("reason",), [[long_value]])


def test_the_columns_people_read_are_derived_from_the_tables() -> None:
    assert tuple(c for c in CUST_FRAUD_COLUMNS if c not in LINEAGE_COLUMNS) == ALERT_SUMMARY_COLUMNS
    assert "detected_at" in ALERT_SUMMARY_COLUMNS and "source_offset" not in ALERT_SUMMARY_COLUMNS
    assert REJECT_COLUMNS[1:] == REJECT_LIST_COLUMNS and "reason" not in REJECT_LIST_COLUMNS


def test_the_fault_drills_choices_are_its_faults() -> None:
    # Listed in the parser so that `fraudshop --help` does not import the drill (and the drivers).
    from fraudshop.lab.faults import Fault

    assert option(subcommands(build_parser())["faults"], "--fault").choices == [fault.value for fault in Fault]


class NarrowTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_table_wider_than_the_terminal_keeps_every_value_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    tranid = "a4aae70c-55be-40ba-a911-f48193431673"
    row = ["CUST-BOB", datetime(2026, 11, 28, 17, 26, 55, 830000), tranid, "ACC0000011", 1.91, "phone"]
    terminal = NarrowTerminal()
    print_table(("customer_id", "tranpostdt", "tranid", "account_no", "amount", "change_type"), [row], file=terminal)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())
    assert "─" in shown  # drawn for a terminal, not the plain text of a pipe
    (line,) = [line for line in shown.splitlines() if "CUST-BOB" in line]
    assert line.split() == ["CUST-BOB", "2026-11-28", "17:26:55.830", tranid, "ACC0000011", "1.91", "phone"]


def test_a_value_is_shown_as_it_is_never_as_markup() -> None:
    garbage = '[/bold] {"amount": [1, 2]} [red]x'
    assert garbage in render_plain(("raw_value",), [[garbage]])
    terminal = NarrowTerminal()
    print_table(("raw_value",), [[garbage]], file=terminal)
    assert garbage in re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())


def test_produce_to_a_broker_that_is_not_there_fails_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) has no Kafka on it: the command must exit non-zero and say so, not hang or trace back.
    code = fraudshop_main(["produce", "--count", "1", "--set", "kafka.bootstrap_servers=127.0.0.1:9"])
    assert code == 1
    assert "fraudshop: Kafka at 127.0.0.1:9: " in capsys.readouterr().err
