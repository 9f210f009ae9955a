"""The launcher: the job's Spark found without the virtualenv on PATH, and signals sent to
`fraudshop job` passed on to the whole job, which leaves nothing running behind it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pyspark
import pytest

from fraudshop.config import load_config
from fraudshop.jobs import launcher
from fraudshop.lab.waiting import wait_until

#: A stand-in for spark-submit's JVM: it starts a child (as the JVM starts the Python driver) and runs.
FAKE_JOB = "import subprocess, sys, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
#: `fraudshop job` with the fake job in place of spark-submit's.
LAUNCHER = textwrap.dedent(
    f"""
    import sys
    from fraudshop.config import load_config
    from fraudshop.jobs import launcher
    launcher.job_command = lambda config, script=None: [sys.executable, "-c", {FAKE_JOB!r}]
    sys.exit(launcher.run_job(load_config(environ={{}}), grace_seconds=20))
    """
)


def test_spark_submit_runs_without_the_virtualenv_on_path(tmp_path: Path) -> None:
    """What `fraudshop job --print` shows runs from a shell whose PATH lacks the virtualenv (pip's
    bin/spark-submit wrapper then fails, looking for Spark with PATH's python3)."""
    executable = launcher.job_command(load_config(environ={}))[0]
    bare = {"HOME": os.environ["HOME"], "PATH": "/usr/local/bin:/usr/bin:/bin"}
    finished = subprocess.run(
        [executable, "--version"], env=bare, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert pyspark.__version__ in finished.stdout + finished.stderr


def test_the_job_environment_names_its_spark_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_HOME", raising=False)
    environment = launcher.job_environment(load_config(environ={}))
    assert Path(environment["SPARK_HOME"]) == Path(pyspark.__file__).parent
    assert environment["PYSPARK_PYTHON"] == environment["PYSPARK_DRIVER_PYTHON"] == sys.executable


def test_run_job_returns_the_jobs_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        launcher, "job_command", lambda config, script=None: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    assert launcher.run_job(load_config(environ={})) == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_the_whole_job(signum: signal.Signals) -> None:
    started = subprocess.Popen([sys.executable, "-c", LAUNCHER], start_new_session=True)
    job: list[psutil.Process] = []
    try:

        def job_running() -> bool:
            job[:] = psutil.Process(started.pid).children(recursive=True)
            return len(job) == 2  # the fake JVM and its child

        wait_until(job_running, 30, "the job's processes", interval=0.2)
        started.send_signal(signum)
        assert started.wait(timeout=30) == 128 + signum  # the job's code: ended by the signal
        _, left = psutil.wait_procs(job, timeout=30)
        assert left == [], f"job processes left running: {left}"
    finally:  # nothing left behind, whatever failed
        if started.poll() is None:
            started.kill()
        for process in job:
            if process.is_running():
                process.kill()


def test_exit_status_reports_a_signal_as_a_shell_does() -> None:
    assert launcher.exit_status(0) == 0
    assert launcher.exit_status(65) == 65
    assert launcher.exit_status(-signal.SIGTERM) == 143


def test_a_signal_that_comes_while_the_job_is_starting_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The job ignores nothing: SIGTERM passed on ends it with 143. The signal arrives inside
    # Popen, before the launcher knows the job's pid, when it used to end the launcher alone.
    real_popen = subprocess.Popen

    def popen_interrupted(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        os.kill(os.getpid(), signal.SIGTERM)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(
        launcher, "job_command", lambda config, script=None: [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    monkeypatch.setattr(subprocess, "Popen", popen_interrupted)
    started = time.monotonic()
    assert launcher.run_job(load_config(environ={}), grace_seconds=10) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
