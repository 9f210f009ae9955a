"""The ``--config`` / ``--set`` options shared by every fraudshop command and job."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fraudshop.config import CONFIG_FILE_ENV, Config, load_config


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
    """The config of ``--config``, else ``$FRAUDSHOP_CONFIG``, else the command's own default file
    (``default_config``: the lab cluster's commands run on the cluster's config), with ``--set``."""
    path = args.config
    if path is None and not os.environ.get(CONFIG_FILE_ENV):
        path = getattr(args, "default_config", None)
    return load_config(path=path, overrides=args.overrides)
