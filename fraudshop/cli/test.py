"""``fraudshop test``: lint, type-check, check the layer contract and run the test suite of a checkout."""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
from pathlib import Path

import fraudshop
from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config

log = logging.getLogger(__name__)

#: The checkout the package runs from: the suite, pyproject.toml and the lint settings live there.
CHECKOUT = Path(fraudshop.__file__).resolve().parents[1]


def suite_steps(pytest_args: list[str]) -> list[list[str]]:
    """The steps, in order: ruff, ruff format, mypy, lint-imports (the import-linter layer
    contract in pyproject.toml), then pytest with the command's other arguments."""
    python = sys.executable
    return [
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "mypy"],
        # lint-imports has no ``python -m`` entry; its script sits beside this interpreter.
        [str(Path(python).with_name("lint-imports"))],
        [python, "-m", "pytest", *pytest_args],
    ]


def run_tests(config: Config, args: argparse.Namespace) -> int:
    """Run each step in the checkout; stop at the first that fails, with its exit code."""
    if not (CHECKOUT / "pyproject.toml").is_file():
        print(f"fraudshop: test runs the suite of a checkout; no pyproject.toml in {CHECKOUT}", file=sys.stderr)
        return 2
    for step in suite_steps(args.pytest_args):
        log.info("running %s", shlex.join([Path(step[0]).name, *step[1:]]))
        code = subprocess.call(step, cwd=CHECKOUT)
        if code != 0:
            return code
    return 0


def register(commands: Commands) -> None:
    add_command(
        commands,
        "test",
        run_tests,
        "lint, type-check, check the layer contract and run the whole test suite; other arguments go to pytest",
    )
