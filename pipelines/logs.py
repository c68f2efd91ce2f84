"""Logging for the command line and its runs: one format, our steps at INFO, errors in a line.

Dagster's own console logger prints every failure with its whole stack trace, so a wrong
property id or a spent quota arrived as a hundred lines. Runs here log through
``compact_console_logger`` instead: a failure shows as one line naming its innermost cause; the
stack trace stays in the run's event log, where the Dagster UI shows it.
"""

from __future__ import annotations

import logging
import sys

from dagster import Field, InitLoggerContext, logger
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# Libraries whose INFO lines describe their own housekeeping, not the user's backfill:
# alembic announces each migration check of Dagster's run storage.
_QUIET_LIBRARIES = ("alembic",)


def configure_logging() -> None:
    """INFO to stderr for the pipeline's own steps; the libraries above only warn."""
    logging.basicConfig(level=logging.INFO, format=LINE_FORMAT, stream=sys.stderr)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


class CompactRunFormatter(logging.Formatter):
    """``<step or job>: <message>``, and for a failure its innermost error's first line."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None)
        if meta is not None:
            source = meta.get("step_key") or meta.get("job_name") or "dagster"
            text = f"{source}: {meta.get('orig_message', '')}"
            cause = _innermost_error(meta.get("dagster_event"))
            if cause:
                text += f" {cause}"
            record.message = text
        return super().formatMessage(record)

    def formatException(self, ei: object) -> str:
        return ""  # tracebacks belong to the event log, not the terminal


def _innermost_error(event: object) -> str:
    """First line of the deepest cause of an event's error, or ""."""
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    if error is None:
        return ""
    lines = str(getattr(error, "message", "")).strip().splitlines()
    return lines[0] if lines else ""


@logger(
    {"log_level": Field(str, default_value="INFO", is_required=False)},
    description="One line per log record on stderr; failures without their stack trace.",
)
def compact_console_logger(init_context: InitLoggerContext) -> logging.Logger:
    run_logger = logging.Logger("ga_ltv.runs", level=init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CompactRunFormatter())
    run_logger.addHandler(handler)
    return run_logger
