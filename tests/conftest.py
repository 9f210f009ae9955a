"""Shared fixtures: a local SparkSession for DataFrame unit tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from fraudshop.jobs.session import pin_process_time_zone_to_utc


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    pin_process_time_zone_to_utc()
    # Python workers (pandas UDFs) run this interpreter, with fraudshop's dependencies, as the launcher's do.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fraudshop-unit-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
