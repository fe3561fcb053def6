"""Logging: one line format for the gateway, with the id of the request being served."""

from __future__ import annotations

import contextvars
import logging
from typing import Final

REQUEST_ID: Final = contextvars.ContextVar[str]("request_id", default="-")
FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged for ('-' outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def configure(level: str) -> None:
    """Log to stderr at `level`, every line carrying its request id."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # pymodbus logs every timeout and stray frame; the pollers log bus trouble once instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
