"""The driver JVM's class-data sharing archive: named after what it is only good for, passed while it
exists, written aside and put in place only after a clean warm-up run, harmless when stale."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pyspark import SparkConf

from fraudshop.config import Config, load_config, versions
from fraudshop.jobs import launcher
from fraudshop.jobs.class_archive import (
    ARCHIVE_DIR,
    archive_being_written,
    archive_key,
    java_executable,
    publish_archive,
)
from fraudshop.jobs.launcher import (
    DETECTION_JOB,
    WARM_UP_JOB,
    ClassArchiveError,
    class_archive,
    prepare_class_archive,
    spark_submit_command,
)
from fraudshop.jobs.resolved_jars import record_resolution
from tests.unit.test_resolved_jars import JAR_NAMES


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(overrides=[f"stack.cache_dir={tmp_path / 'cache'}"], environ={})


def record_jars(config: Config) -> list[Path]:
    """Jars as a first start's Ivy resolution leaves them, recorded as its driver does."""
    ivy = config.stack.cache_dir / "ivy"
    (ivy / "jars").mkdir(parents=True, exist_ok=True)
    jars = [ivy / "jars" / name for name in JAR_NAMES]
    for jar in jars:
        jar.write_bytes(b"PK")
    conf = SparkConf(loadDefaults=False)
    conf.set("spark.jars.packages", ",".join(versions.SPARK_PACKAGES))
    conf.set("spark.jars.ivy", str(ivy))
    conf.set("spark.jars", ",".join(jar.as_uri() for jar in jars))
    assert record_resolution(conf) is not None
    return jars


def fake_java_home(folder: Path, version: str) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "java").write_text("#!/bin/sh\n")
    (folder / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return folder


def driver_options(argv: list[str]) -> list[str]:
    (setting,) = (arg for arg in argv if arg.startswith("spark.driver.extraJavaOptions="))
    return setting.removeprefix("spark.driver.extraJavaOptions=").split()


def put_archive(config: Config) -> Path:
    archive = class_archive(config)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"archive")
    return archive


def test_without_an_archive_the_driver_gets_no_archive_option(config: Config) -> None:
    record_jars(config)
    assert not class_archive(config).exists()
    assert not [option for option in driver_options(spark_submit_command(config, DETECTION_JOB)) if "XX:" in option]


def test_the_driver_maps_the_archive_of_its_command_when_there_is_one(config: Config) -> None:
    record_jars(config)
    archive = put_archive(config)
    assert archive.parent == config.stack.cache_dir / ARCHIVE_DIR and archive.suffix == ".jsa"
    options = driver_options(spark_submit_command(config, DETECTION_JOB))
    assert f"-XX:SharedArchiveFile={archive}" in options
    assert "-Duser.timezone=UTC" in options, "the other driver options stay"


def test_the_archive_is_named_after_the_jars_the_command_passes(config: Config) -> None:
    unresolved = class_archive(config)
    jars = record_jars(config)
    resolved = class_archive(config)
    assert resolved != unresolved
    jars[0].write_bytes(b"PK, a jar fetched again")  # same path, other content
    assert class_archive(config) != resolved
    assert not [option for option in driver_options(spark_submit_command(config, DETECTION_JOB)) if "XX:" in option]


def test_the_archive_is_named_after_the_java_that_runs_the_job(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_jars(config)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    on_path = class_archive(config)
    java_home = fake_java_home(tmp_path / "jdk", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    assert java_executable(os.environ) == java_home / "bin" / "java"
    jdk_17_0_15 = class_archive(config)
    assert jdk_17_0_15 != on_path
    (java_home / "release").write_text('JAVA_VERSION="17.0.16"\n')  # the JDK upgraded in place
    assert class_archive(config) != jdk_17_0_15


def test_the_archive_is_named_after_spark(tmp_path: Path) -> None:
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)
    (spark_home / "jars" / "spark-core_2.12-3.5.7.jar").write_bytes(b"PK")
    key = archive_key(spark_home, None, [])
    (spark_home / "jars" / "spark-core_2.12-3.5.7.jar").rename(spark_home / "jars" / "spark-core_2.12-3.5.8.jar")
    assert archive_key(spark_home, None, []) != key
    assert archive_key(tmp_path / "other-spark", None, []) != key


def test_a_warm_up_run_dumps_the_archive_instead_of_mapping_one(config: Config, tmp_path: Path) -> None:
    record_jars(config)
    existing = put_archive(config)
    options = driver_options(spark_submit_command(config, WARM_UP_JOB, archive_classes_to=tmp_path / "dump.jsa"))
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'dump.jsa'}" in options
    assert f"-XX:SharedArchiveFile={existing}" not in options


def test_concurrent_runs_dump_to_files_of_their_own_and_leave_none_behind(config: Config) -> None:
    cache_dir = config.stack.cache_dir
    with archive_being_written(cache_dir) as first, archive_being_written(cache_dir) as second:
        assert first != second
        first.write_bytes(b"one")
        second.write_bytes(b"two")
    assert list((config.stack.cache_dir / ARCHIVE_DIR).iterdir()) == []


def test_publishing_replaces_the_archive_whole(config: Config) -> None:
    """A JVM that opened the old archive keeps reading it; the path names the new one at once."""
    archive = put_archive(config)
    with archive.open("rb") as mapped_by_a_running_job:
        with archive_being_written(config.stack.cache_dir) as dumped:
            dumped.write_bytes(b"new archive")
            publish_archive(dumped, archive)
        assert mapped_by_a_running_job.read() == b"archive"
    assert archive.read_bytes() == b"new archive"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o644


#: A stand-in for spark-submit: the driver "JVM" writes the archive named by -XX:ArchiveClassesAtExit
#: (when WRITE_ARCHIVE says so) and exits with EXIT_CODE.
FAKE_SPARK_SUBMIT = textwrap.dedent(
    """\
    import os, sys
    (options,) = [arg for arg in sys.argv if arg.startswith("spark.driver.extraJavaOptions=")]
    (dump,) = [o.split("=", 1)[1] for o in options.split() if o.startswith("-XX:ArchiveClassesAtExit=")]
    if os.environ["WRITE_ARCHIVE"] == "yes":
        open(dump, "wb").write(b"classes of " + sys.argv[-1].encode())
    sys.exit(int(os.environ["EXIT_CODE"]))
    """
)


@pytest.fixture
def fake_spark_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "spark-submit"
    script.write_text(f"#!{sys.executable}\n{FAKE_SPARK_SUBMIT}")
    script.chmod(0o755)
    monkeypatch.setattr(launcher, "spark_submit_executable", lambda: str(script))


@pytest.mark.usefixtures("fake_spark_submit")
def test_prepare_puts_the_archive_of_a_clean_run_in_place(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    record_jars(config)
    monkeypatch.setenv("WRITE_ARCHIVE", "yes")
    monkeypatch.setenv("EXIT_CODE", "0")
    with open(os.devnull, "wb") as output:
        archive = prepare_class_archive(config, output)
    assert archive == class_archive(config)
    assert archive.read_bytes() == b"classes of " + str(WARM_UP_JOB).encode()
    assert f"-XX:SharedArchiveFile={archive}" in driver_options(spark_submit_command(config, DETECTION_JOB))
    assert sorted(path.name for path in archive.parent.iterdir()) == [archive.name]


@pytest.mark.usefixtures("fake_spark_submit")
@pytest.mark.parametrize(("written", "exit_code"), [("yes", "1"), ("no", "0")])
def test_prepare_keeps_no_archive_of_a_failed_run(
    config: Config, monkeypatch: pytest.MonkeyPatch, written: str, exit_code: str
) -> None:
    record_jars(config)
    previous = put_archive(config)
    monkeypatch.setenv("WRITE_ARCHIVE", written)
    monkeypatch.setenv("EXIT_CODE", exit_code)
    with open(os.devnull, "wb") as output, pytest.raises(ClassArchiveError):
        prepare_class_archive(config, output)
    assert previous.read_bytes() == b"archive", "the archive in place is not touched"
    assert sorted(path.name for path in previous.parent.iterdir()) == [previous.name]


@pytest.mark.parametrize("content", [b"", b"not an archive", b"\x00" * 4096])
def test_a_bad_archive_costs_the_jvm_only_its_speed_up(tmp_path: Path, content: bytes) -> None:
    """JDK behaviour the launcher relies on: -Xshare:auto (the default) runs without a bad archive."""
    java = java_executable(os.environ)
    assert java is not None
    archive = tmp_path / "stale.jsa"
    archive.write_bytes(content)
    finished = subprocess.run(
        [str(java), f"-XX:SharedArchiveFile={archive}", "-version"], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_the_bench_prepares_the_archive_and_measures_without_one_if_that_fails(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudshop.lab.bench import run

    prepared = tmp_path / "prepared.jsa"
    monkeypatch.setattr(run, "prepare_class_archive", lambda config, output: prepared)
    assert run.prepare_driver_class_archive(config, tmp_path / "work") == prepared

    def failing(config: Config, output: object) -> Path:
        raise ClassArchiveError("the warm-up run failed (exit 1)")

    monkeypatch.setattr(run, "prepare_class_archive", failing)
    assert run.prepare_driver_class_archive(config, tmp_path / "work") is None


def test_a_dump_a_killed_run_left_is_removed_by_a_later_one(config: Config) -> None:
    folder = config.stack.cache_dir / ARCHIVE_DIR
    abandoned, recent = folder / ".dumping-killed", folder / ".dumping-running"
    for left in (abandoned, recent):
        left.mkdir(parents=True)
        (left / "classes.jsa").write_bytes(b"half an archive")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(abandoned, (two_days_ago, two_days_ago))
    with archive_being_written(config.stack.cache_dir):
        pass
    assert not abandoned.exists()
    assert recent.exists(), "a prepare that may still be running keeps its dump"
