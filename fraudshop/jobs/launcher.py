"""Launch a spark-submit job on this machine (the detection job, or the benchmark's baseline) in a
process group of its own (spark-submit's JVM, its Python driver and workers), signalled as a whole."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

import psutil

from fraudshop.config import Config, as_environment, versions
from fraudshop.config.resources import packaged_file
from fraudshop.jobs.class_archive import (
    archive_being_written,
    archive_key,
    archive_path,
    driver_archive_options,
    java_executable,
    publish_archive,
)
from fraudshop.jobs.resolved_jars import dependency_options, recorded_jars

log = logging.getLogger(__name__)

#: The detection job's spark-submit entry point, shipped in this package.
DETECTION_JOB = packaged_file(__package__ or "fraudshop.jobs", "detect_fraud.py")
#: ``fraudshop model train``'s job: trains the risk model with Spark MLlib.
TRAINING_JOB = packaged_file(__package__ or "fraudshop.jobs", "train_model.py")
#: ``fraudshop job --prepare``'s run, whose driver JVM archives the classes it loaded.
WARM_UP_JOB = packaged_file(__package__ or "fraudshop.jobs", "warm_up.py")
#: Signals `fraudshop job` passes on to its job rather than die and leave the job behind.
PASSED_ON_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def spark_submit_command(
    config: Config, script: Path, spark_submit: str = "spark-submit", archive_classes_to: Path | None = None
) -> list[str]:
    """Connector jars are resolved by spark-submit's Ivy client, cached under ``stack.cache_dir``, and
    on later starts passed as the jars that resolution recorded (see :mod:`fraudshop.jobs.resolved_jars`);
    the driver JVM maps the class-data sharing archive of this command when there is one, or, given
    ``archive_classes_to``, writes one there at exit (see :mod:`fraudshop.jobs.class_archive`);
    no secret appears here (the job reads them from the environment)."""
    log_config = packaged_file(__package__ or "fraudshop.jobs", "spark-log4j2.properties")
    ivy_dir = config.stack.cache_dir / "ivy"
    jars = recorded_jars(ivy_dir, versions.SPARK_PACKAGES)
    if archive_classes_to is None:
        archive_options = driver_archive_options(_class_archive_of(config, jars))
    else:
        # Without -Xlog:cds=error the dump warns once per class it skips (over 1,000: unlinked, signed jar).
        archive_options = [f"-XX:ArchiveClassesAtExit={archive_classes_to}", "-Xlog:cds=error"]
    driver_options = ["-Duser.timezone=UTC", f"-Dlog4j2.configurationFile=file:{log_config}", *archive_options]
    conf = {
        "spark.jars.ivy": ivy_dir,
        "spark.driver.extraJavaOptions": " ".join(driver_options),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    options = [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]
    dependencies = dependency_options(jars, versions.SPARK_PACKAGES)
    py_files = ["--py-files", config.job.py_files] if config.job.py_files else []
    return [spark_submit, "--master", config.job.spark_master, *dependencies, *py_files, *options, str(script)]


def class_archive(config: Config) -> Path:
    """Where the driver's class-data sharing archive for this machine's job command is (or would be):
    named after this JVM, this Spark and the connector jars the command passes."""
    return _class_archive_of(config, recorded_jars(config.stack.cache_dir / "ivy", versions.SPARK_PACKAGES))


def _class_archive_of(config: Config, jars: list[Path] | None) -> Path:
    """:func:`class_archive` for a command that passes ``jars`` (None: resolved by Ivy on the way)."""
    return archive_path(config.stack.cache_dir, archive_key(spark_home(), java_executable(os.environ), jars or []))


class ClassArchiveError(RuntimeError):
    """The warm-up run failed, or its JVM wrote no archive: the job starts as before, without one."""


def prepare_class_archive(config: Config, output: IO[bytes] | None = None, timeout_seconds: float = 600) -> Path:
    """``fraudshop job --prepare``: run :data:`WARM_UP_JOB` (its output to ``output``, else ours), whose
    driver JVM archives the classes it loaded when it exits; put the archive in place only after the
    run ended cleanly. Each run dumps to a file of its own, and the archive is replaced by a rename:
    concurrent prepares, and jobs starting meanwhile, each see a whole archive."""
    with archive_being_written(config.stack.cache_dir) as dumped:
        command = spark_submit_command(config, WARM_UP_JOB, spark_submit_executable(), archive_classes_to=dumped)
        job = subprocess.Popen(
            command,
            env=job_environment(config),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
        )
        try:
            returncode = job.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            raise ClassArchiveError(f"the warm-up run did not end in {timeout_seconds:.0f} s") from None
        finally:  # interrupted or timed out: nothing left running, no archive kept
            if job.poll() is None:
                stop_job(job)
        _wait_for_the_rest(job.pid, grace_seconds=60)
        if returncode != 0:
            raise ClassArchiveError(f"the warm-up run failed (exit {exit_status(returncode)}); see its output")
        if not dumped.is_file() or dumped.stat().st_size == 0:
            raise ClassArchiveError("the warm-up run's JVM wrote no class archive; see its output")
        # Named after the run: a first start has just recorded the jars later commands pass.
        return publish_archive(dumped, class_archive(config))


def spark_home() -> Path | None:
    """``$SPARK_HOME``, else the pyspark package's directory (pip's Spark distribution)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    spec = importlib.util.find_spec("pyspark")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def spark_submit_executable() -> str:
    """``<spark home>/bin/spark-submit``, else PATH's. Not pip's wrapper: without ``SPARK_HOME`` it
    finds Spark by running whatever ``python3`` is first on PATH, which fails outside the virtualenv."""
    home = spark_home()
    if home is not None and (home / "bin" / "spark-submit").exists():
        return str(home / "bin" / "spark-submit")
    if found := shutil.which("spark-submit"):
        return found
    raise FileNotFoundError("spark-submit not found: install fraudshop (it brings pyspark) or set SPARK_HOME")


def job_command(config: Config, script: Path = DETECTION_JOB) -> list[str]:
    return spark_submit_command(config, script, spark_submit_executable())


def job_environment(config: Config) -> dict[str, str]:
    """This config (secrets never on the command line), this Python and its Spark."""
    environment = {**os.environ, **as_environment(config)}
    environment["PYSPARK_PYTHON"] = environment["PYSPARK_DRIVER_PYTHON"] = sys.executable
    if home := spark_home():
        environment["SPARK_HOME"] = str(home)
    if config.job.spark_master.startswith("local") or _is_loopback_master(config.job.spark_master):
        environment["SPARK_LOCAL_IP"] = "127.0.0.1"  # the local stack and lab cluster never listen beyond loopback
    return environment


def _is_loopback_master(master: str) -> bool:
    """Standalone masters all on this machine's loopback (the lab cluster's): its workers reach the driver there."""
    if not master.startswith("spark://"):
        return False
    hosts = [address.rsplit(":", 1)[0] for address in master.removeprefix("spark://").split(",")]
    return all(host == "localhost" or host.startswith("127.") for host in hosts)


def start_job(config: Config, output: IO[bytes], script: Path = DETECTION_JOB) -> subprocess.Popen[bytes]:
    """Start the job ``script`` in the background, its output to ``output``; stop it with :func:`stop_job`."""
    return subprocess.Popen(
        job_command(config, script),
        env=job_environment(config),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def job_processes(group: int) -> list[psutil.Process]:
    """The live processes of a job's process group (``group`` is the pid spark-submit started as)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (psutil.Error, ProcessLookupError):
            continue  # it ended while we looked
    return members


def signal_job(group: int, signum: int) -> None:
    """Send ``signum`` to every process of the job's group (none left is fine)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def exit_status(returncode: int) -> int:
    """A job's exit code as a shell reports it: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def run_job(
    config: Config, grace_seconds: float = 60, script: Path = DETECTION_JOB, arguments: Sequence[str] = ()
) -> int:
    """Run the job ``script`` (the detection job unless told) with ``arguments`` in the foreground,
    passing signals on to its group (killed if still running ``grace_seconds`` later); return its exit
    code once every process of it is gone."""
    job: subprocess.Popen[bytes] | None = None
    received: list[int] = []  # signals that came before the job existed: passed on once it does
    kill_timer: threading.Timer | None = None

    def pass_on(signum: int, frame: FrameType | None) -> None:
        nonlocal kill_timer
        if job is None:
            received.append(signum)
            return
        log.info("passing %s on to the job (process group %d)", signal.Signals(signum).name, job.pid)
        signal_job(job.pid, signum)
        if kill_timer is None:  # armed once, by the first signal
            kill_timer = threading.Timer(grace_seconds, signal_job, (job.pid, signal.SIGKILL))
            kill_timer.daemon = True
            kill_timer.start()

    # Installed before the job starts, so no signal can end the launcher and leave the job behind.
    previous = {signum: signal.signal(signum, pass_on) for signum in PASSED_ON_SIGNALS}
    try:
        job = subprocess.Popen(
            [*job_command(config, script), *arguments],
            env=job_environment(config),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for signum in received:
            pass_on(signum, None)
        returncode = job.wait()
        _wait_for_the_rest(job.pid, grace_seconds)
    finally:
        if kill_timer is not None:
            kill_timer.cancel()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_status(returncode)


def stop_job(job: subprocess.Popen[bytes], grace_seconds: float = 60) -> int:
    """SIGTERM the job's whole process group (spark-submit's JVM and its Python driver), SIGKILL
    after ``grace_seconds``; return its exit code once every process of the group is gone."""
    if job.poll() is None or job_processes(job.pid):
        signal_job(job.pid, signal.SIGTERM)
    try:
        returncode = job.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        signal_job(job.pid, signal.SIGKILL)
        returncode = job.wait()
    _wait_for_the_rest(job.pid, grace_seconds)
    return returncode


def _wait_for_the_rest(group: int, grace_seconds: float) -> None:
    """Once spark-submit's JVM has exited, wait for the rest of its group (the Python driver ends
    when its JVM does), killing whatever is still there after ``grace_seconds``."""
    _, alive = psutil.wait_procs(job_processes(group), timeout=grace_seconds)
    if alive:
        log.warning("killing %d job process(es) still running %.0f s after the job ended", len(alive), grace_seconds)
        signal_job(group, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=10)
