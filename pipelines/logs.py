"""Logging for the command line and its worker processes: one format, our steps at INFO."""

from __future__ import annotations

import logging
import sys

# Libraries whose INFO lines describe their own housekeeping, not the user's backfill:
# alembic announces each migration check of Dagster's run storage.
_QUIET_LIBRARIES = ("alembic",)


def configure_logging() -> None:
    """INFO to stderr for the pipeline's own steps; the libraries above only warn."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
