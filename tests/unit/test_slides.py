"""`fraudshop slides`: the presenter notebook, as saved, becomes reveal.js slides that open with no
network: one slide per story step as the cells' slideshow metadata say, every script, style sheet,
font and @import a relative file beside the HTML, reveal.js the pinned, integrity-checked tarball.

The first run downloads reveal.js (2.4 MB) from the npm registry into ``stack.cache_dir``; every
later run uses that copy. No Kafka or Cassandra.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest

from fraudshop.cli import main as fraudshop_main
from fraudshop.lab import slides
from fraudshop.lab.slides import (
    REVEAL_DIR,
    SLIDE_TYPES,
    NotebookError,
    RevealDownloadError,
    check_integrity,
    check_slide_types,
    reveal_js,
    slide_type,
)

REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOK = REPOSITORY / "notebooks" / "fraudshop_demo.ipynb"
SLIDES_HTML = "fraudshop_demo.slides.html"
#: Elements and the attribute through which a browser loads something (not <a href>: a link waits for a click).
LOADING_ATTRIBUTES = {
    "script": "src",
    "link": "href",
    "img": "src",
    "iframe": "src",
    "embed": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "track": "src",
    "object": "data",
}
#: What CSS loads: @import "x", @import url(x), url(x).
CSS_REFERENCE = re.compile(r"""@import\s+(?:url\(\s*)?['"]?([^'")\s;]+)|url\(\s*['"]?([^'")]+?)['"]?\s*\)""")
ANY_URL = re.compile(r"(?:https?:)?//[\w.-]+\.\w+", re.I)


class DeckParser(HTMLParser):
    """What the built HTML loads, and the slides inside ``<div class="slides">``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loaded: list[str] = []
        self.styles: list[str] = []
        self.inline_scripts: list[str] = []
        #: Per slide (a <section> directly in the slides div): its text.
        self.slide_texts: list[str] = []
        self.sections = 0
        self.fragments = 0
        self._section_depth = 0
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if (source := attributes.get(LOADING_ATTRIBUTES.get(tag, ""))) is not None:
            self.loaded.append(source)
        if attributes.get("style"):
            self.styles.append(attributes["style"] or "")
        if "fragment" in (attributes.get("class") or "").split():
            self.fragments += 1
        if tag == "section":
            self.sections += 1
            self._section_depth += 1
            if self._section_depth == 1:
                self.slide_texts.append("")
        if tag in ("style", "script") and "src" not in attributes:
            self._in = tag
            (self.styles if tag == "style" else self.inline_scripts).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section_depth -= 1
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.styles[-1] += data
        elif self._in == "script":
            self.inline_scripts[-1] += data
        elif self._section_depth:
            self.slide_texts[-1] += data


def parse(html: Path) -> DeckParser:
    parser = DeckParser()
    parser.feed(html.read_text(encoding="utf-8"))
    parser.close()
    return parser


def local_file(reference: str, relative_to: Path, output: Path) -> Path:
    """The file a reference loads; it must be a relative path to a file under ``output``."""
    assert not ANY_URL.match(reference), f"{reference!r} is loaded from the network"
    assert not reference.startswith("/"), f"{reference!r} is absolute: the deck would not move"
    path = (relative_to / reference.split("?")[0].split("#")[0]).resolve()
    assert path.is_relative_to(output.resolve()), f"{reference!r} is outside the output directory"
    assert path.is_file(), f"{reference!r} does not exist under {output}"
    return path


def css_references(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # a URL in a comment is not loaded
    return [
        first or second for first, second in CSS_REFERENCE.findall(css) if not (first or second).startswith("data:")
    ]


def check_css(css: str, relative_to: Path, output: Path, seen: set[Path]) -> None:
    """Every @import and url() of ``css`` is a local file; style sheets it imports are checked in turn."""
    for reference in css_references(css):
        path = local_file(reference, relative_to, output)
        if path.suffix == ".css" and path not in seen:
            seen.add(path)
            check_css(path.read_text(encoding="utf-8"), path.parent, output, seen)


def slide_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if slide_type(cell) == "slide"]


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The slides as `fraudshop slides` builds them, from the repository's notebook."""
    output = tmp_path_factory.mktemp("slides")
    assert fraudshop_main(["slides", "--notebook", str(NOTEBOOK), "--output", str(output)]) == 0
    return output


def test_every_cell_of_the_presenter_notebook_says_how_it_shows() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    check_slide_types(notebook)
    assert slide_type(notebook.cells[0]) == "slide", "the deck opens with the notebook's title"


def test_the_deck_has_one_slide_per_slide_cell_each_with_its_heading(deck: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    types = [slide_type(cell) for cell in notebook.cells]
    parsed = parse(deck / SLIDES_HTML)
    headings = [cell.source.splitlines()[0].lstrip("#").strip() for cell in slide_cells(notebook)]
    assert len(parsed.slide_texts) == len(headings) == types.count("slide")
    # nbconvert nests every slide's content in a <section> of its own, plus one per subslide.
    assert parsed.sections == 2 * types.count("slide") + types.count("subslide")
    assert parsed.fragments == types.count("fragment")
    for heading, text in zip(headings, parsed.slide_texts, strict=True):
        assert heading in text
    # Each step's code is in the deck, the skipped cells' (setup, teardown) are not.
    shown = "".join(parsed.slide_texts)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        first_line = cell.source.splitlines()[0]
        assert (first_line in shown) == (slide_type(cell) != "skip"), first_line


def assert_loads_nothing_from_the_network(deck: Path) -> None:
    parsed = parse(deck / SLIDES_HTML)
    loaded = {local_file(reference, deck, deck) for reference in parsed.loaded}
    assert deck / REVEAL_DIR / "dist" / "reveal.js" in loaded
    assert deck / REVEAL_DIR / "plugin" / "notes" / "notes.js" in loaded
    seen: set[Path] = set()
    for path in loaded:
        if path.suffix == ".css":
            check_css(path.read_text(encoding="utf-8"), path.parent, deck, seen)
    for css in parsed.styles:
        check_css(css, deck, deck, seen)
    assert any(path.name == "source-sans-pro.css" for path in seen), "the theme's fonts were not followed"
    for script in parsed.inline_scripts:
        # No module import, require() or fetch of a URL: the inline scripts name no host at all.
        assert not ANY_URL.search(script), script


def test_the_deck_loads_nothing_from_the_network(deck: Path) -> None:
    assert_loads_nothing_from_the_network(deck)
    assert (deck / REVEAL_DIR / "LICENSE").read_text().startswith("Copyright"), "reveal.js's MIT licence goes with it"


def test_the_checks_above_catch_a_deck_that_loads_from_a_cdn(deck: Path, tmp_path: Path) -> None:
    shutil.copytree(deck, tmp_path, dirs_exist_ok=True)
    html = tmp_path / SLIDES_HTML
    text = html.read_text(encoding="utf-8")
    html.write_text(
        text.replace(f'"{REVEAL_DIR}/dist/reveal.js"', '"https://unpkg.com/reveal.js@5.2.1/dist/reveal.js"')
    )
    with pytest.raises(AssertionError, match="network"):
        assert_loads_nothing_from_the_network(tmp_path)
    html.write_text(
        text.replace("</head>", "<style>@import url(https://fonts.googleapis.com/css?family=Lato);</style></head>")
    )
    with pytest.raises(AssertionError, match="network"):
        assert_loads_nothing_from_the_network(tmp_path)


@pytest.mark.parametrize("metadata", [{}, {"slideshow": {}}, {"slideshow": {"slide_type": "slides"}}])
def test_a_cell_without_a_known_slide_type_is_refused_and_named(
    metadata: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    chapter = nbformat.v4.new_markdown_cell("## 12. Rules", metadata=metadata)  # type: ignore[no-untyped-call]
    notebook.cells.append(chapter)
    with_chapter = tmp_path / "with_chapter.ipynb"
    nbformat.write(notebook, with_chapter)  # type: ignore[no-untyped-call]

    assert fraudshop_main(["slides", "--notebook", str(with_chapter), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"cell {len(notebook.cells) - 1} ('## 12. Rules')" in error
    assert ", ".join(SLIDE_TYPES) in error
    assert not (tmp_path / "out").exists()
    with pytest.raises(NotebookError):
        check_slide_types(notebook)


def test_a_notebook_that_is_not_there_or_has_no_visible_cell_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.ipynb"
    assert fraudshop_main(["slides", "--notebook", str(missing), "--output", str(tmp_path / "out")]) == 2
    assert f"{missing}: no such notebook" in capsys.readouterr().err

    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:
        cell.metadata["slideshow"] = {"slide_type": "skip"}
    with pytest.raises(NotebookError, match="no slide"):
        check_slide_types(notebook)
    assert not (tmp_path / "out").exists()


def test_integrity_is_npms_sha512_in_base64() -> None:
    # sha512 of the empty string, as `npm` writes an integrity.
    check_integrity(
        b"", "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )
    with pytest.raises(RevealDownloadError, match="not the pinned one"):
        check_integrity(b"tampered", slides.REVEAL_INTEGRITY)


def fake_tarball() -> bytes:
    """An npm-style tarball: one folder, package/, with reveal.js's licence."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarball:
        licence = b"Copyright (C) reveal.js contributors\n"
        member = tarfile.TarInfo("package/LICENSE")
        member.size = len(licence)
        tarball.addfile(member, io.BytesIO(licence))
    return buffer.getvalue()


class FakeResponse(io.BytesIO):
    def __enter__(self) -> FakeResponse:
        return self


def test_reveal_js_is_downloaded_once_and_only_if_it_is_the_pinned_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = fake_tarball()
    downloads: list[str] = []

    def urlopen(url: str, timeout: float) -> FakeResponse:
        downloads.append(url)
        return FakeResponse(tarball)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    # Not the pinned tarball: refused, nothing left in the cache.
    with pytest.raises(RevealDownloadError):
        reveal_js(tmp_path)
    assert list(tmp_path.iterdir()) == []

    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    monkeypatch.setattr(slides, "REVEAL_INTEGRITY", f"sha512-{digest}")
    unpacked = reveal_js(tmp_path)
    assert unpacked == tmp_path / f"reveal.js-{slides.REVEAL_VERSION}"
    assert (unpacked / "LICENSE").read_text().startswith("Copyright")
    assert [path.name for path in tmp_path.iterdir()] == [unpacked.name], "no unpacking folder left behind"
    assert reveal_js(tmp_path) == unpacked
    assert downloads == [slides.REVEAL_TARBALL_URL] * 2, "the cached copy was downloaded again"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_reveal_starts_in_a_browser_with_no_network(deck: Path) -> None:
    """reveal.js marks its root element 'ready' once Reveal.isReady(); the proxy leads nowhere, so
    anything fetched from a network would fail."""
    assert CHROMIUM is not None
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (deck / SLIDES_HTML).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    (root_classes,) = re.findall(r'<div class="(reveal[^"]*)"', dom)
    assert "ready" in root_classes.split(), root_classes


def test_the_docs_name_the_pinned_reveal_js() -> None:
    assert f"reveal.js {slides.REVEAL_VERSION} (MIT licence" in (REPOSITORY / "docs" / "index.md").read_text()
