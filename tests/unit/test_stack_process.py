"""The local stack's server processes: started, found again through their pid file, stopped; a
server whose own log rolls over as it starts is still seen ready; and a pid file whose pid now
belongs to another process never gets that process signalled."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fraudshop.lab.stack.process import ServerProcess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server(tmp_path: Path, port: int, rolls_its_log: bool = False) -> ServerProcess:
    """A stand-in server: listens on ``port``, then logs that it is ready to its own log and to
    stdout, as the stack's log configs have Kafka and Cassandra do. One that ``rolls_its_log``
    renames its log first, as a size-based rollover does, and starts a new, shorter one."""
    server_log = tmp_path / "server.log"
    script = textwrap.dedent(
        f"""
        import os, socket, time
        listener = socket.create_server(("127.0.0.1", {port}))
        if {rolls_its_log!r}:
            os.rename({str(server_log)!r}, {str(server_log) + ".1"!r})
        with open({str(server_log)!r}, "a") as log:
            log.write("server started\\n")
        print("server started", flush=True)
        time.sleep(300)
        """
    )
    return ServerProcess(
        name="fake",
        command=(sys.executable, "-c", script),
        host="127.0.0.1",
        port=port,
        server_log=server_log,
        ready_line=re.compile("server started"),
        run_dir=tmp_path / "run",
    )


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process fraudshop did not start as a server, leading its own process group as a server does."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_a_server_is_started_found_again_and_stopped(tmp_path: Path) -> None:
    fake = server(tmp_path, free_port())
    assert fake.start(timeout_seconds=30) >= 0
    pid = fake.pid()
    assert pid is not None and fake.is_running()
    assert "ready" in fake.status()
    recorded_pid, recorded_start = fake.pid_file.read_text().split()
    assert int(recorded_pid) == pid and float(recorded_start) == psutil.Process(pid).create_time()
    fake.stop(grace_seconds=10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not fake.is_running() and not fake.pid_file.exists()


def test_a_killed_server_dies_at_once_and_starts_again(tmp_path: Path) -> None:
    fake = server(tmp_path, free_port())
    fake.start(timeout_seconds=30)
    pid = fake.pid()
    assert pid is not None
    fake.kill()  # a crash: SIGKILL, no grace
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not fake.is_running() and not fake.pid_file.exists()
    try:
        assert fake.start(timeout_seconds=30) >= 0 and fake.pid() not in (None, pid)
    finally:
        fake.stop(grace_seconds=10)


def test_a_server_whose_log_rolls_over_as_it_starts_is_seen_ready(tmp_path: Path) -> None:
    # The offset of a long log, read before the start, lies past the end of the new one.
    (tmp_path / "server.log").write_text("an earlier run's line\n" * 10_000)
    fake = server(tmp_path, free_port(), rolls_its_log=True)
    try:
        assert fake.start(timeout_seconds=30) < 30
        assert (tmp_path / "server.log.1").exists() and (tmp_path / "server.log").stat().st_size < 1_000
    finally:
        fake.stop(grace_seconds=10)


@pytest.mark.parametrize("recorded_start", ["", "12345.67"], ids=["pid only", "another start time"])
def test_a_pid_file_naming_an_unrelated_process_does_not_get_it_signalled(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes], recorded_start: str
) -> None:
    fake = server(tmp_path, free_port())
    fake.run_dir.mkdir()
    fake.pid_file.write_text(f"{unrelated_process.pid}\n{recorded_start}\n")
    assert not fake.is_running()
    assert fake.status() == "fake: stopped"
    fake.stop(grace_seconds=1)
    assert unrelated_process.poll() is None, "stop signalled a process that is not the server"
    assert not fake.pid_file.exists()  # the stale pid file is gone


def test_a_pid_file_of_an_older_fraudshop_is_recognised_by_the_servers_port(tmp_path: Path) -> None:
    fake = server(tmp_path, free_port())
    fake.start(timeout_seconds=30)
    pid = fake.pid()
    try:
        fake.pid_file.write_text(f"{pid}\n")  # an older fraudshop wrote the pid alone
        assert fake.pid() == pid
    finally:
        fake.stop(grace_seconds=10)
    assert not fake.is_running()
