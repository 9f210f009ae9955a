"""The ``--config`` / ``--set`` options shared by every fraudshop command and job."""

from __future__ import annotations

import argparse
from pathlib import Path

from fraudshop.config import Config, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="config file overlaid on the packaged defaults: only the keys it changes (default: $FRAUDSHOP_CONFIG)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, over the config file and FRAUDSHOP_SECTION__KEY variables; repeatable",
    )


def config_argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add_config_arguments(parser)
    return parser


def load_config_from_args(args: argparse.Namespace) -> Config:
    return load_config(path=args.config, overrides=args.overrides)
