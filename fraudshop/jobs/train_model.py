"""spark-submit entry point of ``fraudshop model train``: train the risk model with Spark MLlib on the
scored transactions in Cassandra, labelled by the confirmed fraud cases, and record it in
``risk_model``; the detection job applies it from its next batch."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from fraudshop.config.arguments import config_argument_parser
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.session import cassandra_session
from fraudshop.io.cassandra.store import read_cassandra_table
from fraudshop.jobs.session import start_job_session_with
from fraudshop.model.changes import iso_time
from fraudshop.pipeline.training import NotEnoughLabels, train_risk_model
from fraudshop.transforms.training import labelled_transactions, training_window

log = logging.getLogger("fraudshop.train_model")

#: The exit code when there is nothing to learn from (no fraud, or nothing else, in the window).
NOT_ENOUGH_LABELS_EXIT_CODE = 3


def main() -> None:
    parser = config_argument_parser("fraudshop model train: the risk model, with Spark MLlib")
    parser.add_argument(
        "--as-of",
        type=iso_time,
        default=None,
        help="train as at this time (ISO-8601, naive = UTC; default now): labels recorded by then, transactions "
        "before it less the feedback delay",
    )
    config, spark, args = start_job_session_with(parser, app_name="fraudshop-train-model")
    trained_at = datetime.now(UTC)
    as_of = args.as_of or trained_at
    if as_of > trained_at:
        sys.exit(f"--as-of {as_of.isoformat()} is in the future: labels after now are not known")
    start, end = training_window(as_of, config.risk.feedback_delay_days, config.risk.training_days)
    keyspace = config.cassandra.keyspace
    labelled = labelled_transactions(
        read_cassandra_table(spark, keyspace, "transaction"),
        read_cassandra_table(spark, keyspace, "fraud_case"),
        as_of,
        start,
        end,
    )
    log.info("training on the transactions of %s to %s, labels as of %s", start, end, as_of)
    try:
        model = train_risk_model(labelled, as_of, trained_at, config.risk.regularization, config.risk.max_iterations)
    except NotEnoughLabels as error:
        log.error("%s", error)
        sys.exit(NOT_ENOUGH_LABELS_EXIT_CODE)
    with cassandra_session(config.cassandra) as session:
        ModelStore(session, keyspace).record(model)
    log.info(
        "recorded risk model %s: %d transactions, %d frauds, training AUC ROC %.4f",
        model.version,
        model.training_rows,
        model.training_frauds,
        model.training_auc,
    )
    spark.stop()


if __name__ == "__main__":
    main()
