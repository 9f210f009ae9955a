"""A class-data sharing (AppCDS) archive for the job's driver JVM: a faster start after a crash.

Before its first batch the driver JVM loads and verifies some 15,000 classes (Spark, the Cassandra
connector and its driver, Kafka's client, Netty); a dynamic CDS archive holds them parsed and
verified, memory-mapped at start (measured: 2-3 s less from kill -9 to the first trigger on 2
cores). ``fraudshop job --prepare`` writes it (:func:`fraudshop.jobs.launcher.prepare_class_archive`:
a short warm-up run with ``-XX:ArchiveClassesAtExit``); every later spark-submit command the launcher
builds passes ``-XX:SharedArchiveFile`` to the driver while the archive of its key exists.

The key covers what makes an archive useless: the JVM (its binary, ``release`` file and
``libjvm.so``), Spark's jars (``SPARK_HOME``, the version) and the jars the job passes with
``--jars``. Anything it misses costs only the speed-up: with ``-Xshare:auto`` (JDK 17's default)
a JVM that finds the archive mismatched (another JVM build, a changed class path, a bad file)
warns and loads its classes as usual. Only the driver JVM uses it: in local mode the executors
are its threads; on a cluster (client mode) it is the submitting machine's driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: Under ``stack.cache_dir``: the archives, one per key.
ARCHIVE_DIR = "cds"
#: Beside them, one directory per run being dumped; older than this, one a killed run left.
DUMP_PREFIX = ".dumping-"
ABANDONED_AFTER_SECONDS = 24 * 3600


def java_executable(environ: Mapping[str, str]) -> Path | None:
    """The ``java`` that spark-submit runs (``bin/spark-class``): ``$JAVA_HOME/bin/java``, else PATH's."""
    if java_home := environ.get("JAVA_HOME"):
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java", path=environ.get("PATH"))
    return Path(found) if found else None


def _file_identity(path: Path) -> list[object]:
    """A file as the JVM's own archive checks see it: path, size and modification time (None if absent)."""
    try:
        stat = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def java_identity(java: Path) -> dict[str, object]:
    """The JVM behind ``java`` (symlinks such as Debian's alternatives followed): its version and build."""
    binary = java.resolve()
    home = binary.parent.parent
    try:
        release = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        release = None
    return {"java": _file_identity(binary), "release": release, "libjvm": _file_identity(home / "lib/server/libjvm.so")}


def archive_key(spark_home: Path | None, java: Path | None, jars: Sequence[Path]) -> str:
    """A digest of everything an archive is only good for: JVM, Spark's jars and the ``--jars``."""
    spark_jars = sorted((spark_home / "jars").glob("*.jar")) if spark_home else []
    identity = {
        "java": java_identity(java) if java else None,
        "spark_home": str(spark_home),
        "spark_jars": [_file_identity(jar) for jar in spark_jars],
        "spark_conf_dir": os.environ.get("SPARK_CONF_DIR"),
        "jars": [_file_identity(jar) for jar in jars],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def archive_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / ARCHIVE_DIR / f"{key}.jsa"


def driver_archive_options(archive: Path) -> list[str]:
    """The driver JVM's options that map ``archive`` when there is one (none otherwise)."""
    return [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []


@contextlib.contextmanager
def archive_being_written(cache_dir: Path) -> Iterator[Path]:
    """Where one run dumps its archive: a directory of its own beside the archives (same file
    system, so :func:`publish_archive` is a rename), removed afterwards with whatever it still holds."""
    folder = cache_dir / ARCHIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # A run killed before its cleanup left its dump behind: gone once no prepare can still be writing it.
    for left in folder.glob(f"{DUMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                shutil.rmtree(left, ignore_errors=True)
    # mkdtemp: a fresh name per run, so concurrent prepares never write to one file.
    work = Path(tempfile.mkdtemp(prefix=DUMP_PREFIX, dir=folder))
    try:
        yield work / "classes.jsa"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish_archive(dumped: Path, archive: Path) -> Path:
    """Move a completely written archive into its place in one rename: a JVM starting meanwhile maps
    the old file or the new one (a running JVM keeps the old one it mapped), never half of one."""
    os.chmod(dumped, 0o644)  # readable by whoever runs the job, as the cache's jars are
    os.replace(dumped, archive)
    log.info("class-data sharing archive for the driver JVM: %s (%.0f MB)", archive, archive.stat().st_size / 1e6)
    return archive
