"""Run backfills through the Dagster jobs, outside the UI (the CLI and the tests use this)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dagster import DagsterInstance, ExecuteInProcessResult

from pipelines.definitions import LTV_JOB, RAW_JOB, build_definitions
from pipelines.partitions import MONTH_DIMENSION, partition_key, property_month_partitions
from pipelines.settings import Settings

log = logging.getLogger(__name__)

_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class BackfillError(RuntimeError):
    """A partition failed; the message is the underlying error, worded for the user."""


def _failure_message(result: ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            # Dagster wraps the asset's own exception; the innermost cause is the one to show.
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                return f"{error.cls_name}: {error.message.strip()}"
    return "the run failed; see the Dagster logs"


def backfill(
    settings: Settings,
    *,
    months: Sequence[str],
    instance: DagsterInstance,
    property_ids: Sequence[str] | None = None,
) -> None:
    """Land every property-month, then rebuild the LTV marts once."""
    defs = build_definitions(settings)
    available = set(
        property_month_partitions(settings)
        .get_partitions_def_for_dimension(MONTH_DIMENSION)
        .get_partition_keys()
    )
    unknown = [m for m in months if m not in available]
    if unknown:
        raise BackfillError(
            f"Months {', '.join(unknown)} are outside the partitions "
            f"{min(available)}..{max(available)} (the future cannot be loaded; set "
            "GA_LTV_START_MONTH to go further back)."
        )
    raw_job = defs.resolve_job_def(RAW_JOB)
    for property_id in property_ids or settings.property_ids:
        for month in months:
            log.info("property %s month %s: landing raw reports", property_id, month)
            result = raw_job.execute_in_process(
                partition_key=partition_key(property_id, month),
                instance=instance,
                run_config=_QUIET,
                raise_on_error=False,
            )
            if not result.success:
                raise BackfillError(
                    f"property {property_id} month {month}: {_failure_message(result)}"
                )
    result = defs.resolve_job_def(LTV_JOB).execute_in_process(
        instance=instance, run_config=_QUIET, raise_on_error=False
    )
    if not result.success:
        raise BackfillError(f"LTV build: {_failure_message(result)}")
