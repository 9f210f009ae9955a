"""``fraudshop stack``: the embedded local Kafka + Cassandra."""

from __future__ import annotations

import argparse

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config


def stack(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.stack import stack_down, stack_status, stack_up

    if args.action == "up":
        for name, seconds in stack_up(config).items():
            print(f"{name}: ready" + (f" after {seconds:.1f} s" if seconds else " (was already running)"))
    elif args.action == "down":
        stack_down(config)
    for line in stack_status(config):
        print(line)
    return 0


def register(commands: Commands) -> None:
    parser = add_command(commands, "stack", stack, "start, stop or inspect the embedded local Kafka + Cassandra")
    parser.add_argument("action", choices=["up", "down", "status"])
