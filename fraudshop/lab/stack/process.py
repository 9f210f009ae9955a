"""A server process of the local stack: started detached, tracked by a pid file, ready when its
port accepts connections and its console log says so, stopped with SIGTERM (SIGKILL after a grace
period).

The ready line is looked for in the console log (the server's stdout, which fraudshop opens and
appends to), never in the server's own log: that one rolls over by size, and one that rolled while
the server started held its ready line in a renamed file while the new one was shorter than the
offset read before the start (a Kafka restart waited 240 s for a line already written).

The pid file records the process's start time beside its pid: a pid the kernel has since given to
another process is never mistaken for the server, nor signalled."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from fraudshop.lab.waiting import wait_until

log = logging.getLogger(__name__)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message points at its log."""


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _is_alive(process: psutil.Process) -> bool:
    """Running, and not a child that died and waits to be reaped (a zombie)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listens_on(process: psutil.Process, port: int) -> bool:
    try:
        return any(
            connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port
            for connection in process.net_connections(kind="inet")
        )
    except psutil.Error:
        return False


@dataclass(frozen=True)
class ServerProcess:
    name: str
    command: tuple[str, ...]
    host: str
    port: int
    #: The server's own log (named in errors and the status), and the line its console log shows
    #: once the server is ready (the stack's log configs send that line to stdout too).
    server_log: Path
    ready_line: re.Pattern[str]
    run_dir: Path
    #: Variables set for the server over this process's environment.
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        """The server's pid on its first line, its start time (psutil's create_time) on the second."""
        return self.run_dir / f"{self.name}.pid"

    @property
    def console_log(self) -> Path:
        return self.run_dir / f"{self.name}.out"

    def process(self) -> psutil.Process | None:
        """The running server, if the pid file names a live process that is it: the start time
        recorded with its pid, or listening on the server's port."""
        try:
            lines = self.pid_file.read_text().split()
            pid = int(lines[0])
            started = float(lines[1]) if len(lines) > 1 else None
            process = psutil.Process(pid)
            if not _is_alive(process):
                return None
            # The start time can shift when the system clock is stepped (psutil derives it from
            # the boot time): a process listening on the server's port is the server too.
            same = (started is not None and abs(process.create_time() - started) < 0.01) or _listens_on(
                process, self.port
            )
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        if not same:
            log.warning("%s: pid %d of %s belongs to another process now; ignoring it", self.name, pid, self.pid_file)
            return None
        return process

    def pid(self) -> int | None:
        process = self.process()
        return process.pid if process else None

    def is_running(self) -> bool:
        return self.process() is not None

    def start(self, timeout_seconds: float) -> float:
        """Start unless already running; return seconds spent waiting for readiness."""
        launched = self.launch()
        return launched.wait_ready(timeout_seconds) if launched else 0.0

    def launch(self) -> Launched | None:
        """Start the server's process unless it is running (then None); :meth:`Launched.wait_ready`
        waits for it. Servers that only become ready together (a quorum) are launched, then waited for."""
        if self.is_running():
            log.info("%s already running (pid %s) on %s:%d", self.name, self.pid(), self.host, self.port)
            return None
        if port_is_open(self.host, self.port):
            raise ServerStartError(
                f"{self.name}: port {self.host}:{self.port} is taken by a process fraudshop did not start; "
                "stop it or choose another port in the config"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        console_offset = self.console_log.stat().st_size if self.console_log.exists() else 0
        started = time.monotonic()
        with open(self.console_log, "ab") as console:
            process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.environment},
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the command that started it
            )
        self.pid_file.write_text(f"{process.pid}\n{psutil.Process(process.pid).create_time()}\n")
        log.info("starting %s (pid %d), log %s", self.name, process.pid, self.server_log)
        return Launched(self, process, console_offset, started)

    def _console_says_ready(self, offset: int) -> bool:
        with open(self.console_log, errors="replace") as console:
            console.seek(offset)
            return self.ready_line.search(console.read()) is not None

    def stop(self, grace_seconds: float = 60) -> None:
        """SIGTERM the server's process group, SIGKILL after ``grace_seconds``; only if the pid
        file names this server (see :meth:`process`)."""
        process = self.process()
        if process is None:
            self.pid_file.unlink(missing_ok=True)
            return
        log.info("stopping %s (pid %d)", self.name, process.pid)
        self._signal_group(process, signal.SIGTERM)
        # psutil.wait_procs also reaps the server when this process started it.
        _, alive = psutil.wait_procs([process], timeout=grace_seconds)
        if alive:
            log.warning("%s did not stop within %.0f s; killing it", self.name, grace_seconds)
            self._signal_group(process, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=10)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server's process group and wait for it to die: a crash, for drills (no shutdown
        hook runs; the server replays its logs when started again)."""
        process = self.process()
        if process is None:
            return
        log.info("killing %s (pid %d) with SIGKILL", self.name, process.pid)
        self._signal_group(process, signal.SIGKILL)
        psutil.wait_procs([process], timeout=30)
        self.pid_file.unlink(missing_ok=True)

    def _signal_group(self, process: psutil.Process, signum: int) -> None:
        # The server leads its own group (start_new_session), which includes anything it started.
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"{self.name}: stopped"
        state = "ready" if port_is_open(self.host, self.port) else "starting"
        return f"{self.name}: {state} (pid {pid}) on {self.host}:{self.port}, log {self.server_log}"


@dataclass(frozen=True)
class Launched:
    """A server's process just started: :meth:`wait_ready` waits until it serves."""

    server: ServerProcess
    process: subprocess.Popen[bytes]
    console_offset: int
    started: float

    def wait_ready(self, timeout_seconds: float) -> float:
        """Wait until the port accepts connections and the console log has the ready line; return the
        seconds since the launch. A server that exits or outlasts ``timeout_seconds`` is an error (and stopped)."""
        server, process = self.server, self.process

        def ready() -> bool:
            if process.poll() is not None:
                server.pid_file.unlink(missing_ok=True)
                raise ServerStartError(
                    f"{server.name} exited with code {process.returncode} while starting; see {server.server_log} "
                    f"and {server.console_log}"
                )
            return port_is_open(server.host, server.port) and server._console_says_ready(self.console_offset)

        def report(elapsed: float) -> None:
            log.info("waiting for %s … %.0f s", server.name, elapsed)

        remaining = timeout_seconds - (time.monotonic() - self.started)
        try:
            wait_until(ready, max(remaining, 0.5), server.name, interval=0.5, every_10_seconds=report)
        except TimeoutError:
            server.stop()
            raise ServerStartError(
                f"{server.name} was not ready after {timeout_seconds:.0f} s; see {server.server_log}"
            ) from None
        elapsed = time.monotonic() - self.started
        log.info("%s ready on %s:%d after %.1f s", server.name, server.host, server.port, elapsed)
        return elapsed
