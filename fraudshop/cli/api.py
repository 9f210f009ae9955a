"""``fraudshop api``: the profile-change and alerts HTTP API."""

from __future__ import annotations

import argparse
import os

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config, as_environment

#: What each of ``api.workers`` worker processes serves: the app of the configuration in its environment.
APP_FACTORY = "fraudshop.service.api:app_from_environment"


def api(config: Config, args: argparse.Namespace) -> int:
    import uvicorn

    from fraudshop.service.api import create_app

    host, port = config.api.host, config.api.port
    if config.api.workers == 1:
        uvicorn.run(create_app(config), host=host, port=port, log_level="info")
        return 0
    # Each worker is a new process that builds its own app: this config reaches it through the environment.
    # Built here first, so a config the app refuses (no token) stops the command with its error and code.
    create_app(config)
    os.environ.update(as_environment(config))
    uvicorn.run(APP_FACTORY, factory=True, workers=config.api.workers, host=host, port=port, log_level="info")
    return 0


def register(commands: Commands) -> None:
    add_command(commands, "api", api, "serve the profile-change and alerts HTTP API (OpenAPI docs at /docs)")
