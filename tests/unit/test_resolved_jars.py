"""The job's connector jars: resolved by spark-submit on a first start, recorded by the driver, passed
with --jars on later starts while that record holds for exactly these coordinates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark import SparkConf

from fraudshop.config import Config, load_config, versions
from fraudshop.jobs.launcher import DETECTION_JOB, spark_submit_command
from fraudshop.jobs.resolved_jars import manifest_path, record_resolution

PACKAGES = ",".join(versions.SPARK_PACKAGES)
#: Ivy's names for two retrieved jars ([organization]_[artifact]-[revision].jar).
JAR_NAMES = (
    "com.datastax.spark_spark-cassandra-connector_2.12-3.5.1.jar",
    "org.apache.spark_spark-sql-kafka-0-10_2.12-3.5.7.jar",
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(overrides=[f"stack.cache_dir={tmp_path / 'cache'}"], environ={})


def ivy_dir(config: Config) -> Path:
    return config.stack.cache_dir / "ivy"


def retrieved_jars(config: Config) -> list[Path]:
    """Jars as spark-submit's Ivy client leaves them in ``<spark.jars.ivy>/jars``."""
    folder = ivy_dir(config) / "jars"
    folder.mkdir(parents=True, exist_ok=True)
    jars = [folder / name for name in JAR_NAMES]
    for jar in jars:
        jar.write_bytes(b"PK")
    return jars


def driver_conf(config: Config, jars: list[str], packages: str = PACKAGES) -> SparkConf:
    """The driver's settings after spark-submit resolved ``packages``: it lists the jars as file URIs."""
    conf = SparkConf(loadDefaults=False)
    conf.set("spark.jars.packages", packages)
    conf.set("spark.jars.ivy", str(ivy_dir(config)))
    conf.set("spark.jars", ",".join(jars))
    return conf


def resolves_packages(argv: list[str]) -> bool:
    """spark-submit is asked to resolve the connectors (and the driver will see which ones)."""
    return f"spark.jars.packages={PACKAGES}" in argv and "--jars" not in argv and "--packages" not in argv


def passed_jars(argv: list[str]) -> list[Path]:
    assert "--jars" in argv, argv
    assert not any(arg.startswith("spark.jars.packages=") for arg in argv) and "--packages" not in argv
    return [Path(jar) for jar in argv[argv.index("--jars") + 1].split(",")]


def test_a_first_start_has_spark_submit_resolve_the_packages_into_the_cache(config: Config) -> None:
    argv = spark_submit_command(config, DETECTION_JOB)
    assert resolves_packages(argv)
    assert f"spark.jars.ivy={ivy_dir(config)}" in argv
    assert argv[-1] == str(DETECTION_JOB)


def test_the_next_start_passes_the_jars_the_first_one_resolved(config: Config) -> None:
    jars = retrieved_jars(config)
    recorded = record_resolution(driver_conf(config, [jar.as_uri() for jar in jars]))
    assert recorded == manifest_path(ivy_dir(config), versions.SPARK_PACKAGES)
    argv = spark_submit_command(config, DETECTION_JOB)
    assert passed_jars(argv) == jars
    assert f"spark.jars.ivy={ivy_dir(config)}" in argv, "a later fallback resolves into the same cache"
    assert argv[-1] == str(DETECTION_JOB)


def test_a_jar_gone_from_the_cache_means_resolving_again(config: Config) -> None:
    jars = retrieved_jars(config)
    record_resolution(driver_conf(config, [jar.as_uri() for jar in jars]))
    jars[1].unlink()
    assert resolves_packages(spark_submit_command(config, DETECTION_JOB))


def test_a_resolution_of_other_coordinates_is_not_used(config: Config) -> None:
    jars = retrieved_jars(config)
    other = "com.datastax.spark:spark-cassandra-connector_2.12:3.5.0"
    record_resolution(driver_conf(config, [jar.as_uri() for jar in jars], packages=other))
    assert resolves_packages(spark_submit_command(config, DETECTION_JOB))
    # Nor a manifest at this list's place that names other coordinates (copied, edited by hand).
    own = manifest_path(ivy_dir(config), versions.SPARK_PACKAGES)
    own.write_text(manifest_path(ivy_dir(config), [other]).read_text())
    assert resolves_packages(spark_submit_command(config, DETECTION_JOB))


@pytest.mark.parametrize("text", ["{not json", "[]", '{"packages": null}', "", '{"jars": []}'])
def test_an_unreadable_manifest_means_resolving_again(config: Config, text: str) -> None:
    path = manifest_path(ivy_dir(config), versions.SPARK_PACKAGES)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert resolves_packages(spark_submit_command(config, DETECTION_JOB))


def test_a_start_with_jars_records_nothing(config: Config) -> None:
    jars = retrieved_jars(config)
    conf = driver_conf(config, [str(jar) for jar in jars])
    conf.set("spark.jars.packages", "")
    assert record_resolution(conf) is None
    assert not manifest_path(ivy_dir(config), versions.SPARK_PACKAGES).exists()


def test_only_the_jars_ivy_retrieved_are_recorded(config: Config, tmp_path: Path) -> None:
    """A jar the user added with --jars is theirs to pass; jars on another file system are not this
    machine's to pass (a driver in cluster mode)."""
    jars = retrieved_jars(config)
    own = tmp_path / "udf.jar"
    own.write_bytes(b"PK")
    record_resolution(driver_conf(config, [jars[0].as_uri(), own.as_uri(), "hdfs:///x.jar", str(jars[1])]))
    manifest = json.loads(manifest_path(ivy_dir(config), versions.SPARK_PACKAGES).read_text())
    assert manifest == {"packages": list(versions.SPARK_PACKAGES), "jars": [str(jar) for jar in jars]}
    assert record_resolution(driver_conf(config, ["hdfs:///x.jar"], packages="a:b:1")) is None


def test_the_recorded_command_is_one_a_user_can_run(config: Config) -> None:
    """`fraudshop job --print` shows the command: every path absolute, no placeholders."""
    jars = retrieved_jars(config)
    record_resolution(driver_conf(config, [jar.as_uri() for jar in jars]))
    assert all(jar.is_absolute() and jar.is_file() for jar in passed_jars(spark_submit_command(config, DETECTION_JOB)))
