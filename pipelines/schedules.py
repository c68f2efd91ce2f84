"""The monthly refresh: once GA has finished the month just ended, load it; reload early loads.

The schedule ticks hourly and decides per property, in the property's own time zone (as GA
last reported it), whether the refresh day and hour have come. It also reloads any partition
that was loaded before its month was final, so GA's late changes and placeholders such as
`(data not available)` do not survive. Run keys carry the local date: a failed refresh is
retried the next day, a successful one is not repeated.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dagster import (
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from connectors.reports import REPORTS
from pipelines.partitions import MONTH_FORMAT, add_months, partition_key
from pipelines.settings import Settings
from warehouse.checks import finished_partitions, load_states, stale_partitions
from warehouse.connection import WarehouseLockTimeout

if TYPE_CHECKING:
    # define_asset_job returns this class, which dagster does not export at the top level.
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

# A schedule evaluation must finish within a minute; a busy warehouse means "try next hour".
_LOCK_TIMEOUT_SECONDS = 20.0


def month_just_ended(today: date) -> str:
    return add_months(today.replace(day=1), -1).strftime(MONTH_FORMAT)


def refresh_requests(settings: Settings, now: datetime) -> list[RunRequest]:
    """The runs due at `now`: months just ended whose refresh time has come, and stale loads."""
    states = load_states(settings.duckdb_path, lock_timeout=_LOCK_TIMEOUT_SECONDS)
    time_zones = {s.property_id: s.time_zone for s in states}
    finished = finished_partitions(states, tuple(REPORTS.values()))
    due: dict[tuple[str, str], str] = {}
    for property_id in settings.property_ids:
        local = now.astimezone(ZoneInfo(time_zones.get(property_id, "UTC")))
        month = month_just_ended(local.date())
        if (local.day, local.hour) >= (settings.refresh_day, settings.refresh_hour) and (
            property_id,
            month,
        ) not in finished:
            due[(property_id, month)] = "month just ended"
    for key in stale_partitions(states, now=now):
        if key[0] in settings.property_ids:
            due.setdefault(key, "loaded before it was final")
    return [
        RunRequest(
            run_key=f"{property_id}:{month}:{now.astimezone(ZoneInfo('UTC')).date()}",
            partition_key=partition_key(property_id, month),
            tags={"ga_ltv/reason": reason},
        )
        for (property_id, month), reason in sorted(due.items())
    ]


def monthly_refresh_schedule(
    job: UnresolvedAssetJobDefinition, settings: Settings
) -> ScheduleDefinition:
    """Hourly tick; runs only what `refresh_requests` finds due."""

    @schedule(
        name="monthly_refresh",
        cron_schedule="0 * * * *",
        execution_timezone="UTC",
        job=job,
        description=(
            f"Loads the month just ended for each property on day {settings.refresh_day} at "
            f"{settings.refresh_hour:02d}:00 in the property's time zone, reloads months loaded "
            "before they were final, then rebuilds the LTV marts."
        ),
    )
    def _monthly_refresh(context: ScheduleEvaluationContext):
        try:
            requests = refresh_requests(settings, context.scheduled_execution_time)
        except WarehouseLockTimeout:
            return SkipReason("the warehouse is busy with a load; trying again next hour")
        return requests or SkipReason("nothing due")

    return _monthly_refresh
