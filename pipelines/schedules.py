"""The monthly refresh: after GA has finished processing the month just ended, load it."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from dagster import (
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

if TYPE_CHECKING:
    # define_asset_job returns this class, which dagster does not export at the top level.
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from pipelines.partitions import MONTH_FORMAT, add_months, partition_key
from pipelines.settings import Settings

# GA may change a day's data for 48 hours; the 3rd of the month leaves that margin everywhere.
REFRESH_DAY_OF_MONTH = 3
REFRESH_HOUR = 6


def month_just_ended(today: date) -> str:
    return add_months(today.replace(day=1), -1).strftime(MONTH_FORMAT)


def monthly_refresh_schedule(
    job: UnresolvedAssetJobDefinition, settings: Settings
) -> ScheduleDefinition:
    """One run per property for the month just ended; each rebuilds the LTV marts after."""

    @schedule(
        name="monthly_refresh",
        cron_schedule=f"0 {REFRESH_HOUR} {REFRESH_DAY_OF_MONTH} * *",
        execution_timezone="UTC",
        job=job,
        description="Loads the month just ended for every property, then rebuilds the LTV marts.",
    )
    def _monthly_refresh(context: ScheduleEvaluationContext):
        month = month_just_ended(context.scheduled_execution_time.date())
        for property_id in settings.property_ids:
            yield RunRequest(
                run_key=f"{property_id}:{month}",
                partition_key=partition_key(property_id, month),
                tags={"ga_ltv/property": property_id, "ga_ltv/month": month},
            )

    return _monthly_refresh
