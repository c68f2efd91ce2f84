"""Errors a pipeline run reports to the user; here so the CLI can name them before Dagster loads."""

from __future__ import annotations


class BackfillError(RuntimeError):
    """Partitions failed, or the LTV tables could not be built or published; the message lists
    what failed with the underlying errors. ``ltv_built`` says the LTV tables are up to date
    with what landed (only publishing failed), so they are still worth showing."""

    def __init__(self, message: str, *, ltv_built: bool = False) -> None:
        super().__init__(message)
        self.ltv_built = ltv_built
