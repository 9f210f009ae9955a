"""The local stack: real servers, started once, listening on loopback only."""

from __future__ import annotations

import pytest

from fraudshop.config import Config
from fraudshop.lab.stack import stack_status, stack_up

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on ``port``, from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                    found.add(address)
    return found


def test_every_server_port_listens_on_127_0_0_1_only(stack_config: Config) -> None:
    ports = {
        "kafka": stack_config.kafka.first_port,
        "kafka controller": stack_config.stack.kafka_controller_port,
        "cassandra": stack_config.cassandra.port,
        "cassandra storage": stack_config.stack.cassandra_storage_port,
    }
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert {name: listening_addresses(port) for name, port in ports.items()} == {name: {loopback} for name in ports}


def test_starting_a_running_stack_does_nothing(stack_config: Config) -> None:
    assert stack_up(stack_config) == {"cassandra": 0.0, "kafka": 0.0}
    assert all(": ready (pid " in line for line in stack_status(stack_config))
