"""spark-submit entry point: the fraudshop detection stream.

    spark-submit --packages <connector jars> jobs/detect_fraud.py [--config FILE] [--set section.key=value ...]

``fraudshop job`` builds that command line for you (``fraudshop job --print`` shows it).
"""

from __future__ import annotations

import logging
import sys

from pyspark.errors import StreamingQueryException

from fraudshop.spark_session import start_job_session
from fraudshop.streaming import explain_stream_failure, start_detection_query

log = logging.getLogger("fraudshop.job")


def main() -> None:
    config, spark = start_job_session("fraudshop detection stream", app_name="fraudshop-detect-fraud")
    try:
        start_detection_query(spark, config).awaitTermination()
    except StreamingQueryException as error:
        message, exit_code = explain_stream_failure(error)
        log.error(message)
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
