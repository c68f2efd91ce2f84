"""Errors a pipeline run reports to the user; here so the CLI can name them before Dagster loads."""

from __future__ import annotations


class BackfillError(RuntimeError):
    """One or more partitions failed; the message lists them with the underlying errors."""
