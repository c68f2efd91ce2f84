"""Questions the pipeline asks the warehouse: what landed, what is final, what looks wrong.

Asset checks, resumable backfills and the monthly schedule all read the same bookkeeping
(`raw.ga_loads`), so the answers live here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb

from connectors.reports import ReportDefinition, column_name
from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    quote_identifier,
    quote_qualified,
    reader,
)

# GA may still change a day's data for 48 hours after it ends.
FINAL_AFTER = timedelta(days=3)
# What GA shows in acquisition fields while a day is still being processed.
PLACEHOLDER = "(data not available)"


@dataclass(frozen=True)
class PartitionFacts:
    """What one landed report partition holds, for the asset checks."""

    rows: int
    duplicate_keys: int
    placeholder_rows: int
    metric_sums: dict[str, float]


@dataclass(frozen=True)
class LoadState:
    """The latest load of one report partition."""

    property_id: str
    month: str  # YYYY-MM
    report: str
    is_final: bool
    window_end: date
    time_zone: str
    currency_code: str


def _exists(db_path: str | os.PathLike[str]) -> bool:
    return os.path.exists(db_path)


def partition_facts(
    con: duckdb.DuckDBPyConnection, *, report: ReportDefinition, property_id: str, month: date
) -> PartitionFacts:
    """Row count, duplicate dimension keys, placeholder values and metric sums of a partition,
    read on a connection already open (the load's own, right after its commit)."""
    table = quote_qualified(report.raw_table)
    dims = [quote_identifier(column_name(d)) for d in report.dimensions]
    text_dims = [
        quote_identifier(column_name(d)) for d in report.dimensions if d.startswith("firstUser")
    ]
    sums = [f"coalesce(sum({quote_identifier(column_name(m))}), 0)" for m in report.metrics]
    placeholder = " or ".join(f"{d} = $placeholder" for d in text_dims) or "false"
    # Identifiers come from the report definition and are quoted; values are parameters.
    sql = f"""
        select count(*),
               count(*) - count(distinct ({", ".join(dims)})),
               count(*) filter (where {placeholder}),
               {", ".join(sums)}
          from {table}
         where property_id = $property_id and partition_month = $month
    """  # noqa: S608
    row = con.execute(
        sql, {"property_id": property_id, "month": month, "placeholder": PLACEHOLDER}
    ).fetchone()
    assert row is not None
    return PartitionFacts(
        rows=row[0],
        duplicate_keys=row[1],
        placeholder_rows=row[2],
        metric_sums=dict(zip(report.metrics, map(float, row[3:]), strict=True)),
    )


def load_states(
    db_path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> list[LoadState]:
    """The latest load of every report partition; empty before the first load."""
    if not _exists(db_path):
        return []
    with reader(db_path, lock_timeout=lock_timeout) as con:
        has_table = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'ga_loads'"
        ).fetchone()
        if not has_table or not has_table[0]:
            return []
        rows = con.execute(
            "select property_id, strftime(partition_month, '%Y-%m'), report, is_final, "
            "window_end, coalesce(time_zone, 'UTC'), coalesce(currency_code, '') "
            "from raw.ga_loads order by all"
        ).fetchall()
    return [LoadState(*row) for row in rows]


def finished_partitions(
    states: list[LoadState], reports: tuple[ReportDefinition, ...]
) -> set[tuple[str, str]]:
    """(property, month) pairs whose every report was loaded after the month was final."""
    final: dict[tuple[str, str], set[str]] = {}
    for state in states:
        if state.is_final:
            final.setdefault((state.property_id, state.month), set()).add(state.report)
    wanted = {r.name for r in reports}
    return {key for key, names in final.items() if wanted <= names}


def stale_partitions(states: list[LoadState], *, now: datetime) -> list[tuple[str, str]]:
    """(property, month) pairs loaded before they were final, whose data has settled since."""
    stale = {
        (s.property_id, s.month)
        for s in states
        if not s.is_final
        and now.astimezone(ZoneInfo(s.time_zone)).date() >= s.window_end + FINAL_AFTER
    }
    return sorted(stale)


def ltv_decreases(db_path: str | os.PathLike[str]) -> dict[str, int]:
    """Rows of `marts.ltv_monthly` where a cumulative value fell from the previous age.

    Transactions, sessions, page views and engagement only ever add up; revenue may fall
    through refunds, so it is counted separately.
    """
    sql = """
        with steps as (
            select cumulative_revenue
                     - lag(cumulative_revenue) over w as revenue_step,
                   transactions_per_user - lag(transactions_per_user) over w as transactions_step,
                   sessions_per_user - lag(sessions_per_user) over w as sessions_step,
                   page_views_per_user - lag(page_views_per_user) over w as page_views_step,
                   engagement_seconds_per_user
                     - lag(engagement_seconds_per_user) over w as engagement_step
              from marts.ltv_monthly
            window w as (partition by property_id, cohort_month, dimension, dimension_value
                         order by months_since_acquisition)
        )
        select count(*) filter (where revenue_step < -1e-9),
               count(*) filter (where transactions_step < -1e-9 or sessions_step < -1e-9
                                   or page_views_step < -1e-9 or engagement_step < -1e-9)
          from steps
    """
    with reader(db_path) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return {"revenue": row[0], "activity": row[1]}
