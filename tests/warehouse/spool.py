"""Hand-made spool files and load records for the warehouse tests.

Column types are written out here from the connector contract rather than taken from
``warehouse.schema``, so a drift in the warehouse's idea of the contract fails the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition, column_name
from warehouse.loads import LoadRecord, replace_partition

CONTRACT_TYPES: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "first_session_date": pa.date32(),
    "new_users": pa.int64(),
    "transactions": pa.int64(),
    "ecommerce_purchases": pa.int64(),
    "sessions": pa.int64(),
    "screen_page_views": pa.int64(),
    "total_revenue": pa.float64(),
    "purchase_revenue": pa.float64(),
    "user_engagement_duration": pa.float64(),
}

PROPERTY = "123456789"


def arrow_schema(report: ReportDefinition) -> pa.Schema:
    names = [column_name(n) for n in (*report.dimensions, *report.metrics)]
    return pa.schema([(n, CONTRACT_TYPES.get(n, pa.string())) for n in names])


def write_spool(folder: Path, report: ReportDefinition, rows: Sequence[dict[str, Any]]) -> Path:
    """One Parquet spool file with ``rows``; missing metrics are 0, missing dimensions '(x)'."""
    schema = arrow_schema(report)
    columns: dict[str, list[Any]] = {}
    for f in schema:
        default: Any = 0 if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) else "(x)"
        columns[f.name] = [row.get(f.name, default) for row in rows]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.name}-{len(list(folder.iterdir())):04d}.parquet"
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


def month_end(month: date) -> date:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return following - timedelta(days=1)


def load_record(
    month: date, *, report: ReportDefinition, property_id: str = PROPERTY, **overrides: Any
) -> LoadRecord:
    values: dict[str, Any] = {
        "property_id": property_id,
        "report": report.name,
        "partition_month": month,
        "window_start": month,
        "window_end": month_end(month),
        "rows_reported": 0,
        "pages": 1,
        "requests": 1,
        "quota_tokens_used": 12,
        "quota_tokens_remaining_daily": 24_988,
        "quota_tokens_remaining_hourly": None,
        "currency_code": "EUR",
        "time_zone": "Europe/Berlin",
        "data_loss_from_other_row": False,
        "subject_to_thresholding": False,
        "sampling_metadata": None,
        "is_final": True,
    }
    values.update(overrides)
    return LoadRecord(**values)


def acquisition_row(day: date, users: int, channel: str = "Organic Search", **dims: str) -> dict:
    return {
        "first_session_date": day,
        "first_user_default_channel_group": channel,
        "first_user_source": dims.get("source", "google"),
        "first_user_medium": dims.get("medium", "organic"),
        "first_user_campaign_name": dims.get("campaign", "(organic)"),
        "new_users": users,
    }


def activity_row(
    day: date | None,
    first_session: date | None,
    revenue: float,
    channel: str = "Organic Search",
    **kw: Any,
) -> dict:
    row = {
        "date": day,
        "first_session_date": first_session,
        "first_user_default_channel_group": channel,
        "first_user_source": kw.pop("source", "google"),
        "first_user_medium": kw.pop("medium", "organic"),
        "first_user_campaign_name": kw.pop("campaign", "(organic)"),
        "total_revenue": revenue,
        "purchase_revenue": revenue,
    }
    row.update(kw)
    return row


def land(
    db: Path,
    folder: Path,
    report: ReportDefinition,
    month: date,
    rows: Sequence[dict[str, Any]],
    **overrides: Any,
) -> int:
    """Write ``rows`` as a spool (none when empty) and replace the partition with it."""
    files = [write_spool(folder / f"{report.name}-{month:%Y%m}", report, rows)] if rows else []
    overrides.setdefault("rows_reported", len(rows))
    record = load_record(month, report=report, **overrides)
    return replace_partition(db, report=report, load=record, parquet_files=files)


def land_acquisition(db: Path, folder: Path, month: date, rows: Sequence[dict], **kw: Any) -> int:
    return land(db, folder, ACQUISITION, month, rows, **kw)


def land_activity(db: Path, folder: Path, month: date, rows: Sequence[dict], **kw: Any) -> int:
    return land(db, folder, COHORT_ACTIVITY, month, rows, **kw)
