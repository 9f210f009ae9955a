"""The embedded local stack: a real Kafka broker and a real Cassandra node on 127.0.0.1, run from
Maven Central jars with the machine's Java, their data and logs under ``stack.state_dir``."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

from fraudshop.config import Config
from fraudshop.lab.console import step
from fraudshop.lab.stack.cassandra import cassandra_server, prepare_cassandra
from fraudshop.lab.stack.kafka import kafka_server, prepare_kafka
from fraudshop.lab.stack.process import ServerProcess

log = logging.getLogger(__name__)


class StackConfigError(ValueError):
    """The config points the local stack at an address that is not this machine's loopback."""


def _require_loopback(what: str, host: str) -> None:
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        raise StackConfigError(f"{what}: cannot resolve {host!r}") from None
    if not address.is_loopback:
        raise StackConfigError(
            f"{what} is {host}, which is not loopback: the local stack only runs on 127.0.0.1; "
            "point the config at your own cluster instead of starting the local stack"
        )


def _servers(config: Config) -> list[tuple[ServerProcess, Callable[[Config], None]]]:
    """Each server of the stack with the step that prepares it (jars, config files, storage)."""
    _require_loopback("kafka.bootstrap_servers", config.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[0])
    _require_loopback("cassandra.hosts", config.cassandra.host_list[0])
    return [(cassandra_server(config), prepare_cassandra), (kafka_server(config), prepare_kafka)]


def stack_up(config: Config) -> dict[str, float]:
    """Start whatever is not running yet; return each server's seconds to readiness (0 if it was up).
    On a terminal each server's start shows as a line with its elapsed time."""
    ready_after = {}
    for server, prepare in _servers(config):
        if server.is_running():
            ready_after[server.name] = server.start(config.stack.start_timeout_seconds)  # 0: nothing to do
            continue
        with step(f"{server.name}: starting") as starting:
            prepare(config)
            ready_after[server.name] = server.start(config.stack.start_timeout_seconds)
            starting.update(f"{server.name}: ready on {server.host}:{server.port}")
    return ready_after


def stack_down(config: Config) -> None:
    # Kafka first: stopping it stops new work arriving before the store goes away.
    for server, _ in reversed(_servers(config)):
        server.stop()


def stack_status(config: Config) -> list[str]:
    return [server.status() for server, _ in _servers(config)]


def stack_is_running(config: Config) -> bool:
    return all(server.is_running() for server, _ in _servers(config))
