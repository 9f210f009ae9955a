"""The local stack's server configuration templates, shipped as package data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from fraudshop.config.resources import packaged_file

# StrictUndefined: a placeholder the caller did not fill is an error, never an empty string in a
# server's config. No autoescaping: these are properties and YAML files, not HTML.
_TEMPLATES = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def stack_conf(name: str) -> Path:
    return packaged_file(__name__, name)


#: The lab cluster's config (``fraudshop cluster``), a layer over the packaged defaults: pass it with --config.
CLUSTER_CONFIG = stack_conf("cluster.toml")


def render_stack_conf(name: str, **values: Any) -> str:
    """The template ``name`` with its ``{{ placeholders }}`` filled from ``values``."""
    return _TEMPLATES.from_string(stack_conf(name).read_text()).render(**values)
