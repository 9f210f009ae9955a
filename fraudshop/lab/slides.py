"""The presenter notebook as reveal.js slides that open with no network: ``fraudshop slides``.

nbconvert's SlidesExporter renders the notebook as saved (never executed: outputs as they were
saved), through ``slides.html.j2``, nbconvert's reveal template minus everything it would load from
a CDN. reveal.js itself comes from the npm registry, as the tarball of one pinned version whose
sha512 must equal npm's published integrity; it is cached under ``stack.cache_dir`` beside the
stack's jars, and the files the deck loads are copied next to the HTML (with reveal.js's MIT licence).

Every cell must say how it shows (``metadata.slideshow.slide_type``): a cell added without it would
land on whatever slide came before, so the build refuses such a notebook and names the cell.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import SlidesExporter
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from fraudshop.config.resources import packaged_file
from fraudshop.lab.console import step

log = logging.getLogger(__name__)

#: The reveal.js the deck is built with (MIT licence). 5.x keeps the layout nbconvert's reveal
#: template is written for (dist/ and plugin/notes/); 6.x moved its plugins under dist/.
REVEAL_VERSION = "5.2.1"
REVEAL_TARBALL_URL = f"https://registry.npmjs.org/reveal.js/-/reveal.js-{REVEAL_VERSION}.tgz"
#: The registry's ``dist.integrity`` for that tarball (``npm view reveal.js@5.2.1 dist.integrity``).
REVEAL_INTEGRITY = "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="
#: The theme: one whose fonts ship with reveal.js (others @import them from a font CDN).
REVEAL_THEME = "white"
#: What the deck loads from reveal.js, and the licence that must go with every copy of it.
REVEAL_FILES = (
    "LICENSE",
    "dist/reveal.css",
    "dist/reveal.js",
    f"dist/theme/{REVEAL_THEME}.css",
    "dist/theme/fonts/source-sans-pro",
    "plugin/notes/notes.js",
)
#: reveal.js's copy under the output directory: the HTML refers to it by this relative path.
REVEAL_DIR = "reveal.js"
DOWNLOAD_TIMEOUT_SECONDS = 60

#: Every value nbconvert reads ("-" continues the current slide or fragment).
SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
TEMPLATE = "slides.html.j2"


class SlidesError(RuntimeError):
    """The slides cannot be built; the message says why."""


class NotebookError(SlidesError):
    """The notebook is not there, or a cell has no slide type nbconvert knows: the notebook needs fixing."""


class RevealDownloadError(SlidesError):
    """reveal.js could not be downloaded, or the download is not the pinned tarball."""


def slide_type(cell: Any) -> str | None:
    """A cell's ``metadata.slideshow.slide_type``, None when missing."""
    slideshow = cell.get("metadata", {}).get("slideshow", {})
    value = slideshow.get("slide_type") if isinstance(slideshow, dict) else None
    return value if isinstance(value, str) else None


def check_slide_types(notebook: Any) -> None:
    """Raise :class:`NotebookError` naming every cell whose slide type is missing or not one nbconvert knows."""
    wrong = [
        f"cell {index} ({(cell.source.splitlines() or [''])[0][:60]!r}): {slide_type(cell)!r}"
        for index, cell in enumerate(notebook.cells)
        if slide_type(cell) not in SLIDE_TYPES
    ]
    if wrong:
        raise NotebookError(
            f"every cell needs metadata.slideshow.slide_type, one of {', '.join(SLIDE_TYPES)}; "
            f"missing or unknown in: {'; '.join(wrong)}"
        )
    if all(slide_type(cell) in ("skip", "notes") for cell in notebook.cells):
        raise NotebookError("every cell is skip or notes: the deck would have no slide")


def check_integrity(data: bytes, integrity: str) -> None:
    """``data`` must hash to ``integrity``, a Subresource-Integrity string as npm publishes (sha512-<base64>)."""
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RevealDownloadError(f"the download is not the pinned one: {integrity} expected, {algorithm}-{actual} got")


@retry(
    retry=retry_if_exception_type(OSError),  # urllib's URLError and timeouts are OSErrors
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=1, max=10),
    reraise=True,
)
def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        data: bytes = response.read()
    return data


def reveal_js(cache_dir: Path) -> Path:
    """reveal.js, unpacked under ``cache_dir``: downloaded and checked the first time only."""
    target = cache_dir / f"reveal.js-{REVEAL_VERSION}"
    if target.is_dir():  # only ever appears whole: renamed into place after its extraction
        return target
    with step(f"downloading reveal.js {REVEAL_VERSION}"):
        log.info("downloading %s", REVEAL_TARBALL_URL)
        try:
            data = _download(REVEAL_TARBALL_URL)
        except OSError as error:
            raise RevealDownloadError(f"could not download reveal.js from {REVEAL_TARBALL_URL}: {error}") from error
        check_integrity(data, REVEAL_INTEGRITY)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".reveal.js-") as unpacking:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tarball:
            tarball.extractall(unpacking, filter="data")  # no links out, no absolute paths
        try:
            (Path(unpacking) / "package").rename(target)  # npm tarballs hold one folder, package/
        except OSError:
            if not target.is_dir():  # else another build unpacked the same files meanwhile
                raise
    return target


def copy_reveal_js(reveal: Path, output_dir: Path) -> None:
    """The files the deck loads, and reveal.js's licence, into ``output_dir/reveal.js``."""
    copy = output_dir / REVEAL_DIR
    shutil.rmtree(copy, ignore_errors=True)
    for name in REVEAL_FILES:
        source, destination = reveal / name, copy / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copyfile(source, destination)


def build_slides(notebook_path: Path, output_dir: Path, cache_dir: Path) -> Path:
    """Write ``<notebook>.slides.html`` and the reveal.js files it loads into ``output_dir``; return the HTML."""
    if not notebook_path.is_file():
        raise NotebookError(f"{notebook_path}: no such notebook (run from the checkout, or pass --notebook)")
    notebook = nbformat.read(notebook_path, as_version=4)  # type: ignore[no-untyped-call]
    check_slide_types(notebook)
    reveal = reveal_js(cache_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    copy_reveal_js(reveal, output_dir)
    # The exporter runs no kernel: the deck shows the outputs the notebook was saved with.
    exporter = SlidesExporter(  # type: ignore[no-untyped-call]
        raw_template=packaged_file(__package__ or "fraudshop.lab", TEMPLATE).read_text(),
        reveal_url_prefix=REVEAL_DIR,
        reveal_theme=REVEAL_THEME,
        reveal_scroll=True,
    )
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": notebook_path.stem}})
    html = output_dir / f"{notebook_path.stem}.slides.html"
    html.write_text(body, encoding="utf-8")
    log.info("slides written to %s", html)
    return html
