"""Land one report for one property-month: GA pages -> Parquet spool -> one DuckDB transaction.

Pages go to disk as they arrive, so memory stays flat however long the month is, and the
warehouse sees either the whole month or nothing: a crash mid-fetch leaves only spool files.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from connectors.ga4_client import Ga4Reports, QuotaStatus, ResponseFlags
from connectors.reports import ReportDefinition
from pipelines.partitions import add_months
from warehouse.checks import FINAL_AFTER
from warehouse.loads import LoadRecord, replace_partition

PREVIEW_ROWS = 5


class MonthNotStartedError(ValueError):
    """The partition's month has not begun anywhere on Earth yet."""


@dataclass(frozen=True)
class MonthWindow:
    """The calendar dates of one partition, read by GA in the property's time zone."""

    month: date
    start: date
    end: date

    @classmethod
    def of(cls, month_key: str) -> MonthWindow:
        first = datetime.strptime(month_key, "%Y-%m").date()
        return cls(month=first, start=first, end=add_months(first, 1) - timedelta(days=1))


@dataclass(frozen=True)
class LandingResult:
    """What one landing did, for logs, metadata and checks."""

    window: MonthWindow
    load_id: str
    pages: int
    rows_per_page: tuple[int, ...]
    rows_reported: int
    rows_landed: int
    is_final: bool
    flags: ResponseFlags | None
    quota: QuotaStatus | None
    quota_tokens_used: int
    preview: list[dict[str, object]] | None = None


def today_in(time_zone: str, *, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(time_zone or "UTC")).date()


def land_report(
    *,
    reports: Ga4Reports,
    report: ReportDefinition,
    month_key: str,
    db_path: Path,
    spool_dir: Path,
    log: logging.Logger,
    currency_code: str | None = None,
    now: datetime | None = None,
) -> LandingResult:
    """Fetch a report for one month and replace that partition's rows in the warehouse."""
    window = MonthWindow.of(month_key)
    now = now or datetime.now(UTC)
    # The earliest time zone is UTC+14: before that, no property has lived a day of the month.
    if window.start > (now + timedelta(hours=14)).date():
        raise MonthNotStartedError(f"Month {month_key} has not started yet; nothing to load.")
    load_id = uuid.uuid4().hex
    spool = spool_dir / reports.property_id / report.name / month_key / load_id
    spool.mkdir(parents=True, exist_ok=True)
    log.info(
        "property %s report %s window %s..%s: fetching",
        reports.property_id,
        report.name,
        window.start,
        window.end,
    )
    try:
        files: list[Path] = []
        pages = rows = row_count = tokens_used = 0
        flags: ResponseFlags | None = None
        quota: QuotaStatus | None = None
        preview: list[dict[str, object]] | None = None
        rows_per_page: list[int] = []
        for page in reports.iter_pages(
            report, start=window.start, end=window.end, currency_code=currency_code
        ):
            pages += 1
            rows_per_page.append(page.table.num_rows)
            row_count, flags, quota = page.row_count, page.flags, page.quota or quota
            if page.quota:
                # GA reports what each request consumed; the month costs their sum.
                tokens_used += page.quota.tokens_per_day_consumed
            if page.table.num_rows:
                if preview is None:
                    preview = page.table.slice(0, PREVIEW_ROWS).to_pylist()
                path = spool / f"page-{pages:05d}.parquet"
                pq.write_table(page.table, path)
                files.append(path)
                rows += page.table.num_rows
            log.info(
                "property %s report %s page %d: %d rows (%d of %d)",
                reports.property_id,
                report.name,
                pages,
                page.table.num_rows,
                rows,
                row_count,
            )
        if rows == 0:
            log.warning(
                "property %s report %s window %s..%s is empty",
                reports.property_id,
                report.name,
                window.start,
                window.end,
            )
        time_zone = flags.time_zone if flags else "UTC"
        is_final = today_in(time_zone, now=now) >= window.end + FINAL_AFTER
        load = LoadRecord(
            load_id=load_id,
            property_id=reports.property_id,
            partition_month=window.month,
            report=report.name,
            window_start=window.start,
            window_end=window.end,
            rows_reported=row_count,
            rows_landed=rows,
            pages=pages,
            requests=pages,
            quota_tokens_used=tokens_used if quota else None,
            quota_tokens_remaining_daily=quota.tokens_per_day_remaining if quota else None,
            quota_tokens_remaining_hourly=quota.tokens_per_hour_remaining if quota else None,
            currency_code=flags.currency_code if flags else "",
            time_zone=time_zone,
            data_loss_from_other_row=bool(flags and flags.data_loss_from_other_row),
            subject_to_thresholding=bool(flags and flags.subject_to_thresholding),
            sampling_metadata=json.dumps(list(flags.sampling))
            if flags and flags.sampling
            else None,
            is_final=is_final,
            loaded_at=now,
        )
        written = replace_partition(db_path, report=report, load=load, parquet_files=files)
        log.info(
            "property %s report %s month %s: wrote %d rows to %s",
            reports.property_id,
            report.name,
            month_key,
            written,
            report.raw_table,
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return LandingResult(
        window=window,
        load_id=load_id,
        pages=pages,
        rows_per_page=tuple(rows_per_page),
        rows_reported=row_count,
        rows_landed=written,
        is_final=is_final,
        flags=flags,
        quota=quota,
        quota_tokens_used=tokens_used,
        preview=preview,
    )
