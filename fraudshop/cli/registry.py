"""How a command group adds its commands to the ``fraudshop`` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from fraudshop.config import Config
from fraudshop.config.arguments import add_config_arguments

#: A command: runs with the loaded config and its parsed arguments, returns the exit code.
Handler = Callable[[Config, argparse.Namespace], int]
#: What ``add_subparsers`` returns: where each command's parser is added (generic only to the type checker).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(commands: Commands, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A command's parser, with the ``--config``/``--set`` options every command takes."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
    add_config_arguments(parser)
    parser.set_defaults(handler=handler)
    return parser
