"""``fraudshop job``: the detection job, run with spark-submit."""

from __future__ import annotations

import argparse
import logging
import shlex
import time

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config

log = logging.getLogger(__name__)


def job(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.jobs.launcher import ClassArchiveError, job_command, prepare_class_archive, run_job

    if args.print:
        print(shlex.join(job_command(config)))
        return 0
    if args.prepare:
        started = time.monotonic()
        try:
            archive = prepare_class_archive(config)
        except ClassArchiveError as error:
            log.error("no class archive prepared: %s", error)
            return 1
        print(f"driver class archive ready in {time.monotonic() - started:.0f} s: {archive}")
        return 0
    return run_job(config)


def register(commands: Commands) -> None:
    parser = add_command(commands, "job", job, "run the detection job with spark-submit")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print", action="store_true", help="print the spark-submit command instead of running it")
    mode.add_argument(
        "--prepare",
        action="store_true",
        help="instead of running the job, run a short warm-up that writes a class-data sharing archive"
        " its driver JVM starts faster with (optional; needs Cassandra and Kafka reachable)",
    )
