"""``fraudshop model``: the risk model. ``train`` spark-submits the training job (Spark MLlib, on the
scored transactions and confirmed cases in Cassandra); ``show`` prints the newest models and the
current one's coefficients."""

from __future__ import annotations

import argparse

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config
from fraudshop.model.changes import iso_time


def train(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.jobs.launcher import TRAINING_JOB, run_job

    arguments = ["--as-of", args.as_of.isoformat()] if args.as_of else []
    return run_job(config, script=TRAINING_JOB, arguments=arguments)


def show(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.models import ModelStore
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import print_table

    with cassandra_session(config.cassandra) as session:
        models = ModelStore(session, config.cassandra.keyspace).models(limit=args.limit)
    if not models:
        print("no risk model yet: `fraudshop model train` trains one from the confirmed cases")
        return 0
    print_table(
        ("model_version", "as_of", "transactions", "frauds", "training AUC ROC"),
        [
            [m.version, m.as_of.isoformat(), m.training_rows, m.training_frauds, round(m.training_auc, 4)]
            for m in models
        ],
    )
    current = models[0]
    print(f"current: {current.version} (the job applies it; intercept {current.intercept:.4f})")
    print_table(
        ("feature", "coefficient"),
        [[name, round(c, 4)] for name, c in zip(current.features, current.coefficients, strict=True)],
    )
    return 0


def model(config: Config, args: argparse.Namespace) -> int:
    return train(config, args) if args.action == "train" else show(config, args)


def register(commands: Commands) -> None:
    parser = add_command(
        commands, "model", model, "the risk model: train it with Spark MLlib on the confirmed cases, or show it"
    )
    parser.add_argument("action", choices=["train", "show"])
    parser.add_argument(
        "--as-of",
        type=iso_time,
        default=None,
        help="train: as at this time (ISO-8601, naive = UTC; default now): labels recorded by then",
    )
    parser.add_argument("--limit", type=int, default=5, help="show: how many of the newest models (default 5)")
