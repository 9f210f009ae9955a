"""Files shipped inside the package, found through importlib.resources so that a wheel works too."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged_file(package: str, name: str) -> Path:
    """The wheel installs plain files (never zipped), so the path can be handed to spark-submit or a JVM."""
    path = Path(str(files(package).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing from the installed package {package}")
    return path
