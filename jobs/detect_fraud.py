"""spark-submit entry point: the fraudshop detection stream.

    spark-submit --packages <connector jars> jobs/detect_fraud.py [--config FILE] [--set section.key=value ...]

``fraudshop job`` builds that command line for you (``fraudshop job --print`` shows it).
"""

from __future__ import annotations

from fraudshop.cli_args import config_argument_parser, load_config_from_args
from fraudshop.logs import configure_logging
from fraudshop.spark_session import build_spark_session
from fraudshop.streaming import start_detection_query


def main() -> None:
    args = config_argument_parser(description="fraudshop detection stream").parse_args()
    configure_logging()
    config = load_config_from_args(args)
    spark = build_spark_session(config, app_name="fraudshop-detect-fraud")
    spark.sparkContext.setLogLevel("WARN")
    start_detection_query(spark, config).awaitTermination()


if __name__ == "__main__":
    main()
