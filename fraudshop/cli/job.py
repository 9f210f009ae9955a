"""``fraudshop job``: the detection job, run with spark-submit."""

from __future__ import annotations

import argparse
import shlex

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config


def job(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.jobs.launcher import job_command, run_job

    if args.print:
        print(shlex.join(job_command(config)))
        return 0
    return run_job(config)


def register(commands: Commands) -> None:
    parser = add_command(commands, "job", job, "run the detection job with spark-submit")
    parser.add_argument("--print", action="store_true", help="print the spark-submit command instead of running it")
