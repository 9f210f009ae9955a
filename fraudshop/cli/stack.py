"""``fraudshop stack``: the embedded local Kafka + Cassandra; ``fraudshop cluster``: the lab cluster."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import CONFIG_FILE_ENV, Config
from fraudshop.lab.stack.conf import CLUSTER_CONFIG


def _act(
    action: str,
    up: Callable[[], dict[str, float]],
    down: Callable[[], None],
    status: Callable[[], list[str]],
) -> None:
    """Run ``up`` (printing each server's seconds to readiness) or ``down``, then print the status."""
    if action == "up":
        for name, seconds in up().items():
            print(f"{name}: ready" + (f" after {seconds:.1f} s" if seconds else " (was already running)"))
    elif action == "down":
        down()
    for line in status():
        print(line)


def stack(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.stack import stack_down, stack_status, stack_up

    _act(args.action, partial(stack_up, config), partial(stack_down, config), partial(stack_status, config))
    return 0


def cluster(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.stack.cluster import cluster_down, cluster_status, cluster_up

    try:
        _act(args.action, partial(cluster_up, config), partial(cluster_down, config), partial(cluster_status, config))
    except ValueError as error:  # ClusterConfigError among them: a config that is not the lab cluster's
        print(f"fraudshop: {error}", file=sys.stderr)
        return 2
    used = args.config or os.environ.get(CONFIG_FILE_ENV) or CLUSTER_CONFIG
    print(f"config: {used} (pass it with --config to run fraudshop commands on the cluster)")
    return 0


def register(commands: Commands) -> None:
    parser = add_command(commands, "stack", stack, "start, stop or inspect the embedded local Kafka + Cassandra")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser = add_command(
        commands,
        "cluster",
        cluster,
        "start, stop or inspect the lab cluster: 3 Cassandra nodes, 3 Kafka nodes, a Spark standalone master"
        " and 2 workers on loopback addresses (its config: fraudshop/lab/stack/conf/cluster.toml)",
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    # Runs on the cluster's config unless --config or $FRAUDSHOP_CONFIG names another.
    parser.set_defaults(default_config=CLUSTER_CONFIG)
