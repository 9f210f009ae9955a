"""Logging set-up shared by the fraudshop command and the job: our progress at INFO, libraries quieter."""

from __future__ import annotations

import logging

# Libraries whose INFO lines are connection chatter, not progress a person waits for.
_QUIET_LOGGERS = ("kafka", "py4j", "cassandra.policies")


class _DropProtocolNegotiation(logging.Filter):
    """cassandra-driver warns each time it negotiates the protocol down to what the server speaks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Downgrading core protocol version")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("cassandra.cluster").addFilter(_DropProtocolNegotiation())
