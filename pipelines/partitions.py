"""Partitions: one per GA4 property and calendar month, so properties never block each other."""

from __future__ import annotations

from datetime import date

from dagster import (
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from pipelines.settings import EMBEDDED_MONTHS, Settings

MONTH_FORMAT = "%Y-%m"
PROPERTY_DIMENSION = "property"
MONTH_DIMENSION = "month"
# Without a configured start month, offer two years of history to backfill.
DEFAULT_HISTORY_MONTHS = 24


def add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def first_month(settings: Settings, *, today: date | None = None) -> str:
    """The earliest month any property wants loaded, as YYYY-MM."""
    starts = [p.start_month for p in settings.properties if p.start_month]
    if settings.start_month:
        starts.append(settings.start_month)
    if starts:
        return min(starts)
    this_month = (today or date.today()).replace(day=1)
    back = EMBEDDED_MONTHS - 1 if settings.embedded else DEFAULT_HISTORY_MONTHS
    return add_months(this_month, -back).strftime(MONTH_FORMAT)


def property_month_partitions(settings: Settings) -> MultiPartitionsDefinition:
    """Property x month; the month in progress is offered too, and reloaded once final."""
    return MultiPartitionsDefinition(
        {
            PROPERTY_DIMENSION: StaticPartitionsDefinition(list(settings.property_ids)),
            MONTH_DIMENSION: MonthlyPartitionsDefinition(
                start_date=first_month(settings), fmt=MONTH_FORMAT, end_offset=1
            ),
        }
    )


def partition_key(property_id: str, month: str) -> MultiPartitionKey:
    return MultiPartitionKey({PROPERTY_DIMENSION: property_id, MONTH_DIMENSION: month})


# Run tag naming the partition a backfill lands next ("<property>/<YYYY-MM>"), so the run can
# ask GA for it ahead of time (see `Ga4Reports.prefetch`).
NEXT_PARTITION_TAG = "ga_ltv/next_partition"


def next_partition_tag(property_id: str, month: str) -> dict[str, str]:
    return {NEXT_PARTITION_TAG: f"{property_id}/{month}"}


def next_partition(tags: dict[str, str]) -> tuple[str, str] | None:
    """(property id, month) from a run's tags, or None when the run did not name one."""
    value = tags.get(NEXT_PARTITION_TAG, "")
    property_id, _, month = value.partition("/")
    return (property_id, month) if property_id and month else None
