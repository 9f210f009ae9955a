"""The reference in docs/ builds with `mkdocs build --strict` (no broken link or anchor, no page left
out of the nav), the README's links lead to it, and the configuration page lists every setting with
its packaged default."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from pydantic import BaseModel

from fraudshop.config import Config
from fraudshop.config.resources import packaged_file

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
README = REPOSITORY / "README.md"
MKDOCS_YML = REPOSITORY / "mkdocs.yml"
CONFIGURATION_PAGE = DOCS / "configuration.md"
CONFIGURATION_TABLE_HEADER = "| key | default | meaning |"
# Inline links and images, [text](target "title"): reference-style links are not used.
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def nav_pages(nav: object) -> list[str]:
    """The Markdown files of an mkdocs nav, at any depth (an entry is a path, {title: path} or {title: [...]})."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for entry in nav for page in nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for entry in nav.values() for page in nav_pages(entry)]
    raise TypeError(f"unexpected nav entry {nav!r}")


def mkdocs_config() -> dict[str, object]:
    config = yaml.safe_load(MKDOCS_YML.read_text())
    assert isinstance(config, dict)
    return config


def without_code(markdown: str) -> str:
    """``markdown`` without fenced code blocks and code spans, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M))


def relative_links(markdown: str) -> list[str]:
    return [target for target in MARKDOWN_LINK.findall(without_code(markdown)) if not re.match(r"[a-z]+:", target)]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub and MkDocs give a page's headings (the same for headings without markup)."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).strip().replace(" ", "-") for heading in headings}


def test_the_docs_build_strictly_without_a_warning(tmp_path: Path) -> None:
    assert mkdocs_config()["strict"] is True  # a plain `mkdocs build` fails on a warning too
    site = str(tmp_path / "site")  # not the checkout's site/
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS_YML), "--site-dir", site],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "profiles" / "index.html").is_file()


def test_every_docs_page_is_in_the_nav_once_and_the_nav_names_only_pages() -> None:
    nav = nav_pages(mkdocs_config()["nav"])
    assert len(nav) == len(set(nav)), nav
    assert set(nav) == {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}


def test_every_relative_link_of_the_readme_points_to_an_existing_file_and_heading() -> None:
    links = relative_links(README.read_text())
    assert links  # the README is the way into the docs
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPOSITORY / path if path else README
        assert target.exists(), f"README.md links to {link}: no such file"
        if anchor and target.suffix == ".md":
            assert anchor in heading_anchors(target.read_text()), f"README.md links to {link}: no such heading"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README.read_text())}
    for page in nav_pages(mkdocs_config()["nav"]):
        assert (DOCS / page).resolve() in linked, f"README.md does not link docs/{page}"


def test_link_checks_see_links_and_only_links() -> None:
    markdown = '[a](docs/a.md) ![b](b.png "t") [c](https://x.org) `[d](d.md)`\n```\n[e](e.md)\n```\n[f](#g)\n'
    assert relative_links(markdown) == ["docs/a.md", "b.png", "#g"]
    assert heading_anchors("# The HTTP API\n## 3. Submit\n## Data model (`bank.cql`)\n") == {
        "the-http-api",
        "3-submit",
        "data-model-bankcql",
    }


def config_keys() -> set[str]:
    keys: set[str] = set()
    for section, field in Config.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), section
        keys |= {f"{section}.{key}" for key in model.model_fields}
    return keys


def documented_defaults() -> dict[str, str | None]:
    """Each key of the configuration page's table and the default written for it: a code span's text, "" for
    "empty", None where the default is described in words. A cell lists one default per key of its row
    ("`6`, `2`"); its last one holds for the rest ("`PLAINTEXT`, empty" for four keys)."""
    table = CONFIGURATION_PAGE.read_text().partition(CONFIGURATION_TABLE_HEADER)[2]
    assert table, f"{CONFIGURATION_PAGE} has no table headed {CONFIGURATION_TABLE_HEADER}"
    defaults: dict[str, str | None] = {}
    for line in table.strip().splitlines()[1:]:
        if not line.startswith("| "):
            break
        keys_cell, default_cell, _meaning = line.strip().strip("|").split(" | ")
        keys = re.findall(r"`([a-z_]+\.[a-z_]+)`", keys_cell)
        assert keys and ", ".join(f"`{key}`" for key in keys) == keys_cell.strip(), line
        parts = [part.strip() for part in default_cell.split(", ")]
        if len(parts) > len(keys):  # a default in words with a comma ("SimpleStrategy, RF 1")
            parts = [default_cell]
        parts += parts[-1:] * (len(keys) - len(parts))
        for key, part in zip(keys, parts, strict=True):
            assert key not in defaults, f"{key} is listed twice"
            code = re.fullmatch(r"`([^`]*)`", part)
            defaults[key] = "" if part.startswith("empty") else code.group(1) if code else None
    return defaults


def shown(value: object) -> str:
    """A TOML default as the configuration page writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_configuration_page_lists_every_setting_with_its_packaged_default() -> None:
    defaults = documented_defaults()
    assert set(defaults) == config_keys()
    packaged = tomllib.loads(packaged_file("fraudshop.config", "fraudshop.toml").read_text())
    for key, documented in defaults.items():
        section, name = key.split(".")
        if documented is not None:
            assert documented == shown(packaged[section][name]), key
    # Only the replication map is written in words; every other default is compared.
    assert {key for key, documented in defaults.items() if documented is None} == {"cassandra.replication"}


def test_the_cluster_pages_figures_are_the_committed_runs() -> None:
    """docs/cluster.md quotes the cluster drill and the two rate runs as committed in benchmarks/cluster/."""
    import json

    committed = REPOSITORY / "benchmarks" / "cluster"
    page = (DOCS / "cluster.md").read_text()
    readme = README.read_text()
    drill = json.loads((committed / "drill.json").read_text())
    assert drill["passed"] and len(drill["recoveries"]) == 4
    for recovery in drill["recoveries"]:
        row = (
            f"| `{recovery['fault']}` | {recovery.get('node', 'the driver')} | {recovery['seconds_to_next_batch']} s |"
        )
        assert row in page and row in readme, row
    for name in ("rate-single-node", "rate-cluster"):
        rate = json.loads((committed / f"{name}.json").read_text())
        assert rate["passed"] and not rate["faults"]
        stream = rate["stream_rate"]
        cells = f"| {stream['records_per_second']} | {stream['records_per_second_of_batch_time']} |"
        assert cells in page and cells in readme, (name, cells)
