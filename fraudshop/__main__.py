"""``python3 -m fraudshop <command>``: run a fraudshop command.

In a checkout, this is what the README's two commands use on a fresh machine. It needs only the
standard library: it creates ``.venv`` beside the package, installs fraudshop with its dev extras
when ``pyproject.toml`` changed, and re-runs itself inside that environment. Installed from a
wheel (no ``pyproject.toml`` beside the package), it just runs the command.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
INSTALL_STAMP = VENV / ".fraudshop-install"
REQUIRED_TOOLS = {"java": "Java 17 runs Kafka, Cassandra and Spark", "mvn": "Maven resolves the servers' jars"}
#: Debian packages the test suite needs (the browser tests run Debian's chromium; a browser download
#: from elsewhere is not an option), installed by ``test`` when missing: program -> package.
TEST_SYSTEM_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}


def _say(message: str) -> None:
    print(f"[fraudshop] {message}", file=sys.stderr, flush=True)


def _running_in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _ensure_installed() -> None:
    missing = [f"{tool} ({why})" for tool, why in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        sys.exit(f"[fraudshop] missing on PATH: {', '.join(missing)}")
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text().strip() == wanted and VENV_PYTHON.exists():
        return
    if not VENV_PYTHON.exists():
        _say(f"creating virtualenv {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    _say("installing fraudshop and its dependencies into .venv (first time: about a minute)")
    subprocess.run(
        [str(VENV_PYTHON), "-m", "pip", "install", "--progress-bar", "on", "-e", f"{REPO}[dev]"],
        check=True,
    )
    INSTALL_STAMP.write_text(wanted + "\n")


def _ensure_test_system_packages() -> None:
    missing = sorted({package for program, package in TEST_SYSTEM_PACKAGES.items() if shutil.which(program) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        _say(f"the browser tests need Debian's {' and '.join(missing)}: `sudo apt-get install {' '.join(missing)}`")
        return
    _say(f"installing {', '.join(missing)} from Debian's packages (the browser tests)")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install).returncode != 0:  # a fresh machine's package lists may be missing or stale
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)


def _in_a_checkout() -> bool:
    # A wheel installs the package alone into site-packages: no pyproject.toml beside it.
    return (REPO / "pyproject.toml").is_file()


def _run_cli() -> NoReturn:
    from fraudshop.cli import main as cli_main

    sys.exit(cli_main())


def main() -> None:
    if not _in_a_checkout():
        _run_cli()
    _ensure_installed()
    if sys.argv[1:2] == ["test"]:
        _ensure_test_system_packages()
    if _running_in_project_venv():
        _run_cli()
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), "-m", "fraudshop", *sys.argv[1:]])


if __name__ == "__main__":
    main()
