"""Files shipped inside the package (defaults, schema, job scripts, server templates), found
through importlib.resources so they work from a wheel as well as from a checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged_file(package: str, name: str) -> Path:
    """The path of ``name`` shipped in ``package``. The wheel installs as plain files (never
    zipped), so the path can be handed to a subprocess such as spark-submit or a JVM."""
    path = Path(str(files(package).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing from the installed package {package}")
    return path
