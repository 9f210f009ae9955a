"""Logging set-up shared by the fraudshop command and the job: our progress at INFO, libraries quieter."""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("kafka", "py4j", "cassandra.policies"):  # connection chatter at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    # cassandra-driver warns each time it negotiates the protocol down to what the server speaks.
    logging.getLogger("cassandra.cluster").addFilter(
        lambda record: not record.getMessage().startswith("Downgrading core protocol version")
    )
