"""``fraudshop evaluate``: replay labelled transactions (the Fraud Detection Handbook's format) through the
real pipeline and measure detection on a test period (``docs/evaluation.md``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config

#: The pages whose figures `--write-benchmarks` rewrites, relative to the checkout.
EVALUATION_PAGES = (Path("README.md"), Path("docs/evaluation.md"))


def evaluate(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.lab.console import print_table
    from fraudshop.lab.evaluation.data import LabelledDataError
    from fraudshop.lab.evaluation.publish import update_evaluation_pages, write_accuracy
    from fraudshop.lab.evaluation.replay import EvaluationError, EvaluationPlan, run_evaluation
    from fraudshop.lab.stack import stack_up

    if args.test_to < args.test_from:
        print(f"fraudshop: --test-to {args.test_to} is before --test-from {args.test_from}", file=sys.stderr)
        return 2
    plan = EvaluationPlan(
        data=args.data,
        test_from=args.test_from,
        test_to=args.test_to,
        first_day=args.first_day,
        customers=args.customers,
        seed=args.seed,
        feedback_delay_days=args.feedback_delay_days,
        warm_up_days=args.warm_up_days,
    )
    if args.local_stack:
        stack_up(config)
    try:
        figures = run_evaluation(config, plan, args.work_dir, keep=args.keep)
    except (EvaluationError, LabelledDataError) as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print_table(
        ("signal", "AUC ROC", "average precision", "Card Precision@100"),
        [
            [s["signal"], s["auc_roc"], s["average_precision"], s["card_precision_at_100"]]
            for s in figures["signals"].values()
        ],
    )
    print(f"figures: {args.output}")
    if args.write_benchmarks is not None:
        latest = write_accuracy(figures, args.write_benchmarks)
        update_evaluation_pages(args.pages, latest)
        print(f"written to {latest} (accuracy), {', '.join(map(str, args.pages))}")
    return 0


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "evaluate",
        evaluate,
        "replay labelled transactions (the Fraud Detection Handbook's format) day by day through Kafka, the job and "
        "Cassandra, and measure detection on a test period",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/datasets/card-fraud-handbook"),
        help="a directory of Parquet files with the handbook's columns (default: %(default)s)",
    )
    parser.add_argument("--test-from", type=date.fromisoformat, required=True, help="the test period's first day")
    parser.add_argument("--test-to", type=date.fromisoformat, required=True, help="the test period's last day")
    parser.add_argument("--first-day", type=date.fromisoformat, help="the replay's first day (default: the data's)")
    parser.add_argument("--customers", type=int, help="replay a random sample of this many customers (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's and the genuine cases' seed")
    parser.add_argument(
        "--feedback-delay-days", type=int, default=7, help="days before a label comes back as a case (default 7)"
    )
    parser.add_argument(
        "--warm-up-days",
        type=int,
        default=30,
        help="replayed days before any transaction trains the model (default 30, the features' window)",
    )
    parser.add_argument("--output", type=Path, default=Path("results/evaluation.json"), help="the figures (JSON)")
    parser.add_argument("--work-dir", type=Path, default=Path("results/evaluation"), help="job log and checkpoint")
    parser.add_argument(
        "--write-benchmarks",
        type=Path,
        help="also put the figures under accuracy in DIR/latest.json, and the docs page",
    )
    parser.add_argument("--page", dest="pages", type=Path, action="append", help=argparse.SUPPRESS)
    parser.set_defaults(pages=list(EVALUATION_PAGES))
    parser.add_argument(
        "--no-local-stack",
        dest="local_stack",
        action="store_false",
        help="use the configured Kafka and Cassandra as they are (default: start the local stack first)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch keyspace and topic afterwards")
