"""The ``fraudshop`` command: one module per command group, each adding its commands here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fraudshop.cli import (
    alerts,
    api,
    cases,
    data,
    evaluate,
    job,
    lab,
    model,
    notifications,
    profiles,
    rules,
    stack,
    test,
)
from fraudshop.cli.registry import Handler
from fraudshop.config import ConfigError
from fraudshop.config.arguments import load_config_from_args
from fraudshop.config.logs import configure_logging

#: Command groups in the order ``fraudshop --help`` lists their commands.
COMMAND_GROUPS = (stack, data, profiles, rules, cases, model, job, api, alerts, notifications, lab, evaluate, test)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudshop",
        description="Real-time fraud detection: a profile change, then the account's transactions within its window "
        "are flagged (Kafka -> Spark Structured Streaming -> Cassandra). Every command takes --config and --set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    configure_logging()
    try:
        config = load_config_from_args(args)
    except ConfigError as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    return handler(config, args)


if __name__ == "__main__":
    sys.exit(main())
