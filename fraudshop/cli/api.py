"""``fraudshop api``: the profile-change and alerts HTTP API."""

from __future__ import annotations

import argparse

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config


def api(config: Config, args: argparse.Namespace) -> int:
    import uvicorn

    from fraudshop.service.api import create_app

    uvicorn.run(create_app(config), host=config.api.host, port=config.api.port, log_level="info")
    return 0


def register(commands: Commands) -> None:
    add_command(commands, "api", api, "serve the profile-change and alerts HTTP API (OpenAPI docs at /docs)")
