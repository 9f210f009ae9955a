"""fraudshop works outside a checkout: its wheel, installed in a fresh venv, runs from any directory
and finds its packaged files (defaults, job script, log config) inside site-packages.

Builds the wheel from a copy of the sources (so the work tree gets no build/ or egg-info) and
installs it with its dependencies from pip's cache or index: about 30 s with a warm cache. Needs
no Kafka or Cassandra.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: What the wheel is built from: the project metadata and the package, nothing else of the checkout.
SOURCES = ("pyproject.toml", "README.md", "fraudshop")
INSTALL_TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class InstalledWheel:
    venv: Path
    site_packages: Path
    #: A directory outside the checkout and the venv, with its own empty HOME.
    elsewhere: Path

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv from ``elsewhere``, with nothing of this checkout's environment."""
        environment = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.elsewhere / "home"),
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=self.elsewhere,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledWheel]:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)], root)
    (wheel,) = dist.glob("fraudshop-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root)
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        root,
    )
    site_packages = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    elsewhere = root / "elsewhere"
    (elsewhere / "home").mkdir(parents=True)
    yield InstalledWheel(venv=venv, site_packages=Path(site_packages), elsewhere=elsewhere)


def test_fraudshop_is_imported_from_the_wheel(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run("python", "-c", "import fraudshop; print(fraudshop.__file__)")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(installed_wheel.site_packages)


def test_fraudshop_help_runs_outside_the_checkout(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run("fraudshop", "--help")
    assert result.returncode == 0, result.stderr
    assert "job" in result.stdout and "stack" in result.stdout


def test_python_m_fraudshop_runs_the_command_without_bootstrapping_a_venv(installed_wheel: InstalledWheel) -> None:
    # In a checkout, python -m fraudshop sets up .venv from pyproject.toml; installed, there is none.
    result = installed_wheel.run("python", "-m", "fraudshop", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: fraudshop")
    assert "[fraudshop]" not in result.stderr


def test_job_print_names_the_packaged_job_script_and_log_config(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run("fraudshop", "job", "--print", "--set", "job.spark_master=local[1]")
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout.strip().splitlines()[-1])
    spark_submit, script = Path(argv[0]), Path(argv[-1])
    assert spark_submit.name == "spark-submit" and spark_submit.is_file()
    assert argv[argv.index("--master") + 1] == "local[1]", "the packaged defaults and --set were not read"

    assert script.name == "detect_fraud.py"
    assert script.is_file()
    assert script.is_relative_to(installed_wheel.site_packages / "fraudshop")

    driver_options = next(arg for arg in argv if arg.startswith("spark.driver.extraJavaOptions="))
    log_config = re.search(r"-Dlog4j2\.configurationFile=file:(\S+)", driver_options)
    assert log_config is not None, driver_options
    assert Path(log_config.group(1)).is_file()
    assert Path(log_config.group(1)).is_relative_to(installed_wheel.site_packages / "fraudshop")
