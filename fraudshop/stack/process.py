"""A server process of the local stack: started detached, tracked by a pid file, ready when its
port accepts connections and its log says so, stopped with SIGTERM (SIGKILL after a grace period)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message points at its log."""


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child we started and that died stays a zombie until reaped; it is not alive.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class ServerProcess:
    name: str
    command: tuple[str, ...]
    host: str
    port: int
    #: The server's own log, and the line in it that says the server is ready.
    server_log: Path
    ready_line: re.Pattern[str]
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def console_log(self) -> Path:
        return self.run_dir / f"{self.name}.out"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _process_is_alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout_seconds: float) -> float:
        """Start unless already running; return seconds spent waiting for readiness."""
        if self.is_running():
            log.info("%s already running (pid %s) on %s:%d", self.name, self.pid(), self.host, self.port)
            return 0.0
        if port_is_open(self.host, self.port):
            raise ServerStartError(
                f"{self.name}: port {self.host}:{self.port} is taken by a process fraudshop did not start; "
                "stop it or choose another port in the config"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        log_offset = self.server_log.stat().st_size if self.server_log.exists() else 0
        started = time.monotonic()
        with open(self.console_log, "ab") as console:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the command that started it
            )
        self.pid_file.write_text(f"{process.pid}\n")
        log.info("starting %s (pid %d), log %s", self.name, process.pid, self.server_log)
        next_report = started + 10
        while True:
            elapsed = time.monotonic() - started
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServerStartError(
                    f"{self.name} exited with code {process.returncode} while starting; see {self.server_log} "
                    f"and {self.console_log}"
                )
            if port_is_open(self.host, self.port) and self._log_says_ready(log_offset):
                log.info("%s ready on %s:%d after %.1f s", self.name, self.host, self.port, elapsed)
                return elapsed
            if elapsed > timeout_seconds:
                self.stop()
                raise ServerStartError(
                    f"{self.name} was not ready after {timeout_seconds:.0f} s; see {self.server_log}"
                )
            if time.monotonic() >= next_report:
                log.info("waiting for %s … %.0f s", self.name, elapsed)
                next_report += 10
            time.sleep(0.5)

    def _log_says_ready(self, offset: int) -> bool:
        try:
            with open(self.server_log, errors="replace") as server_log:
                server_log.seek(offset)
                return self.ready_line.search(server_log.read()) is not None
        except FileNotFoundError:
            return False

    def stop(self, grace_seconds: float = 60) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        log.info("stopping %s (pid %d)", self.name, pid)
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while _process_is_alive(pid):
            if time.monotonic() > deadline:
                log.warning("%s did not stop within %.0f s; killing it", self.name, grace_seconds)
                os.killpg(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"{self.name}: stopped"
        state = "ready" if port_is_open(self.host, self.port) else "starting"
        return f"{self.name}: {state} (pid {pid}) on {self.host}:{self.port}, log {self.server_log}"


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
