"""The job's Maven dependencies (the connectors), resolved once rather than on every start.

spark-submit's Ivy client resolves ``spark.jars.packages`` on every start, 1-4 s on a warm cache on 2
busy cores, which every restart after a crash pays; and for a Python job it also puts every resolved
jar on the driver's ``sys.path`` (twice), which made the driver's imports 0.6-1 s slower (the jars hold
no Python). So the first start resolves them as before; its
driver then records what Ivy retrieved (``spark.jars``: the jars under ``<spark.jars.ivy>/jars``) in a
manifest beside Ivy's cache, named after the exact coordinates; later starts pass those jars with
``--jars``, which spark-submit puts on the driver's classpath and ships to executors just as it does
resolved packages. A manifest of other coordinates, or one listing a jar that is gone, is not used:
that start resolves again and records anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark import SparkConf

log = logging.getLogger(__name__)

#: Spark's settings: the coordinates to resolve, the Ivy directory, and the jars the application runs with.
PACKAGES = "spark.jars.packages"
IVY_DIR = "spark.jars.ivy"
JARS = "spark.jars"


def manifest_path(ivy_dir: Path, packages: Sequence[str]) -> Path:
    """One manifest per exact list of coordinates, in the Ivy directory whose jars it lists."""
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:16]
    return ivy_dir / "fraudshop-resolutions" / f"{digest}.json"


def recorded_jars(ivy_dir: Path, packages: Sequence[str]) -> list[Path] | None:
    """The jars a previous resolution of exactly ``packages`` retrieved, if every one is still there;
    otherwise None (spark-submit must resolve them)."""
    path = manifest_path(ivy_dir, packages)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("ignoring the unreadable resolution manifest %s: %s", path, error)
        return None
    if not isinstance(manifest, dict):
        manifest = {}
    jars = manifest.get("jars")
    if manifest.get("packages") != list(packages) or not isinstance(jars, list) or not jars:
        log.info("resolution manifest %s is not one of %s: resolving them", path, ",".join(packages))
        return None
    if missing := [jar for jar in jars if not (isinstance(jar, str) and Path(jar).is_file())]:
        log.info("%d jar(s) listed in %s are gone (%s, ...): resolving again", len(missing), path, missing[0])
        return None
    return [Path(jar) for jar in jars]


def dependency_options(jars: list[Path] | None, packages: Sequence[str]) -> list[str]:
    """spark-submit options that give the job ``packages``: their recorded ``jars`` (what
    :func:`recorded_jars` returned) with ``--jars``, else the coordinates for Ivy to resolve (into
    the directory ``--conf spark.jars.ivy`` names) and for the driver to record (see
    :func:`record_resolution`)."""
    if jars is None:
        return ["--conf", f"{PACKAGES}={','.join(packages)}"]
    return ["--jars", ",".join(map(str, jars))]


def _local_file(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file", "local"):
        return Path(unquote(parsed.path))
    return None


def record_resolution(conf: SparkConf) -> Path | None:
    """In the driver: when spark-submit resolved ``spark.jars.packages``, write the manifest
    :func:`dependency_options` reads on the next start; return its path (None when there is
    nothing to record: the jars came from ``--jars``, or are not this machine's files)."""
    packages, ivy, jars = conf.get(PACKAGES), conf.get(IVY_DIR), conf.get(JARS)
    if not (packages and ivy and jars):
        return None
    ivy_dir = Path(ivy).expanduser()
    # Ivy retrieves the resolved jars into <ivy>/jars; anything else in spark.jars came from --jars.
    retrieved = [path for path in map(_local_file, jars.split(",")) if path and path.parent == ivy_dir / "jars"]
    if not retrieved or not all(path.is_file() for path in retrieved):
        return None
    coordinates = [package.strip() for package in packages.split(",") if package.strip()]
    path = manifest_path(ivy_dir, coordinates)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a job starting meanwhile reads the old manifest or the new, never half of one.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as file:
        try:
            json.dump({"packages": coordinates, "jars": [str(jar) for jar in retrieved]}, file, indent=1)
            os.chmod(file.name, 0o644)  # as readable as the jars it lists (a temporary file starts private)
        except BaseException:
            os.unlink(file.name)
            raise
    os.replace(file.name, path)
    log.info("recorded the %d resolved jars of %s in %s", len(retrieved), packages, path)
    return path
