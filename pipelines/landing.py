"""Land one property-month's reports: GA pages -> Parquet spool -> one DuckDB transaction.

Each page goes to disk when the next one arrives (the last is inserted from memory), so memory
stays flat however long the month is, and the warehouse sees either the whole month or nothing:
a crash mid-fetch leaves only spool files.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.ga4_client import Ga4Reports, QuotaStatus, ReportPage, ResponseFlags
from connectors.reports import ReportDefinition
from connectors.windows import DateWindow
from pipelines.partitions import add_months
from warehouse.checks import FINAL_AFTER, PartitionFacts, partition_facts
from warehouse.connection import DiskFullError
from warehouse.loads import LoadRecord, PartitionLoad, replace_partitions

PREVIEW_ROWS = 5
ABANDONED_SPOOL_AGE = timedelta(hours=6)


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
    pages_fetched_ahead: int  # pages a previous run had asked GA for ahead of time
    facts: PartitionFacts  # the partition as read back from the warehouse after the commit
    preview: list[dict[str, object]] | None = None


@dataclass
class _WindowSpool:
    """The spooled pages of one date window's current attempt."""

    window: DateWindow
    attempt: int
    files: list[Path] = field(default_factory=list)
    rows_per_page: list[int] = field(default_factory=list)
    row_count: int = 0
    flags: ResponseFlags | None = None

    def summary(self) -> dict[str, object]:
        """The window's detail for ``raw.ga_loads.sampling_metadata``."""
        flags = self.flags
        return {
            "start": self.window.start.isoformat(),
            "end": self.window.end.isoformat(),
            "pages": len(self.rows_per_page),
            "rows": sum(self.rows_per_page),
            "row_count": self.row_count,
            "data_loss_from_other_row": bool(flags and flags.data_loss_from_other_row),
            "subject_to_thresholding": bool(flags and flags.subject_to_thresholding),
            "sampling": list(flags.sampling) if flags else [],
        }


class _Spooler:
    """A report's pages, kept per date window: written to Parquet as the next page arrives.

    The latest page stays in memory instead, and the load inserts it straight from there: a
    one-page month (the common case) never touches the disk, while memory still holds no
    more than one page, however many the month has.
    """

    def __init__(self, month: MonthWindow) -> None:
        self._month = month
        self.windows: dict[DateWindow, _WindowSpool] = {}
        self._held: tuple[_WindowSpool, Path, pa.Table] | None = None

    def add(self, page: ReportPage, path: Path) -> None:
        """Keep a page under its window; a later attempt of a window discards the earlier one."""
        key = page.window or DateWindow(self._month.start, self._month.end)
        spool = self.windows.get(key)
        if spool is None or page.attempt != spool.attempt:
            if spool is not None:
                for stale in spool.files:
                    stale.unlink(missing_ok=True)
                if self._held and self._held[0] is spool:
                    self._held = None
            spool = self.windows[key] = _WindowSpool(key, page.attempt)
        spool.row_count, spool.flags = page.row_count, page.flags
        spool.rows_per_page.append(page.table.num_rows)
        if page.table.num_rows:
            self._write_held()
            self._held = (spool, path, page.table)

    def kept(self) -> list[_WindowSpool]:
        return [self.windows[key] for key in sorted(self.windows)]

    def held_table(self) -> pa.Table | None:
        """The last page, still in memory (its window is among `kept`)."""
        return self._held[2] if self._held else None

    def _write_held(self) -> None:
        if self._held is None:
            return
        spool, path, table = self._held
        self._held = None
        try:
            # Owner-only from the start: the rows are a customer's revenue.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                pq.write_table(table, out)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise DiskFullError(
                f"the disk holding the spool folder {path.parent} is full (no space left on "
                "device) while saving a GA page; these pages never reached the warehouse. "
                "Free space there, or point GA_LTV_SPOOL_DIR at a bigger disk, and run the same "
                "command again."
            ) from None
        spool.files.append(path)


def _private_folder(root: Path, *parts: str) -> Path:
    """Spool pages hold customer revenue and outlive a crash: each folder made here is 0700.

    Folder by folder, because ``mkdir(parents=True)`` ignores the mode for the parents.
    """
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = root
    for part in parts:
        folder = folder / part
        folder.mkdir(exist_ok=True, mode=0o700)
    return folder


def _remove_abandoned_spools(spool_dir: Path, *, log: logging.Logger) -> None:
    """Delete spool folders left by runs that died (SIGKILL, power loss), whatever partition
    they belong to: a partition that later landed whole is never fetched again.

    A live fetch writes a page at least every few minutes, so a folder untouched for hours
    belongs to a run that will never load it. Folders are <property>/<report>/<month>/<load>.
    """
    if not spool_dir.is_dir():
        return
    cutoff = datetime.now(UTC).timestamp() - ABANDONED_SPOOL_AGE.total_seconds()
    for folder in spool_dir.glob("*/*/*/*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed spool %s left by an interrupted run", folder)


def today_in(time_zone: str, *, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(time_zone or "UTC")).date()


@dataclass(frozen=True)
class _FetchedReport:
    """One report of the month, spooled and described, waiting for the transaction."""

    report: ReportDefinition
    load: LoadRecord
    files: list[Path]
    held: pa.Table | None  # the last page, not written to the spool
    rows_per_page: list[int]
    flags: ResponseFlags | None
    quota: QuotaStatus | None
    pages_fetched_ahead: int
    preview: list[dict[str, object]] | None


def land_month(
    *,
    reports: Ga4Reports,
    report_definitions: Sequence[ReportDefinition],
    month_key: str,
    db_path: Path,
    spool_dir: Path,
    log: logging.Logger,
    currency_code: str | None = None,
    now: datetime | None = None,
) -> list[LandingResult]:
    """Fetch each report for one month, then replace all their partitions in one transaction.

    The reports of a month land together or not at all: a quota stop or a crash between them
    leaves the warehouse as it was, never one report newer than the other.
    """
    window = MonthWindow.of(month_key)
    now = now or datetime.now(UTC)
    # The earliest time zone is UTC+14: before that, no property has lived a day of the month.
    if window.start > (now + timedelta(hours=14)).date():
        raise MonthNotStartedError(f"Month {month_key} has not started yet; nothing to load.")
    _remove_abandoned_spools(spool_dir, log=log)
    spools: list[Path] = []
    try:
        fetched = []
        for report in report_definitions:
            load_id = uuid.uuid4().hex
            spools.append(
                _private_folder(spool_dir, reports.property_id, report.name, month_key, load_id)
            )
            fetched.append(
                _fetch_report(reports, report, window, spools[-1], load_id, log, currency_code, now)
            )
        read_back: list[PartitionFacts] = []

        def read_partitions(con: duckdb.DuckDBPyConnection) -> None:
            read_back.extend(
                partition_facts(
                    con, report=item.report, property_id=reports.property_id, month=window.month
                )
                for item in fetched
            )

        written = replace_partitions(
            db_path,
            [
                PartitionLoad(
                    item.report, item.load, item.files, [] if item.held is None else [item.held]
                )
                for item in fetched
            ],
            after_commit=read_partitions,
        )
    finally:
        for spool in spools:
            shutil.rmtree(spool, ignore_errors=True)
    results = []
    for item, replaced, facts in zip(fetched, written, read_back, strict=True):
        log.info(
            "property %s report %s month %s: wrote %d rows to %s (replacing %d)",
            reports.property_id, item.report.name, month_key, replaced.inserted,
            item.report.raw_table, replaced.deleted,
        )  # fmt: skip
        results.append(
            LandingResult(
                window=window,
                load_id=item.load.load_id,
                pages=item.load.pages,
                rows_per_page=tuple(item.rows_per_page),
                rows_reported=item.load.rows_reported,
                rows_landed=replaced.inserted,
                is_final=item.load.is_final,
                flags=item.flags,
                quota=item.quota,
                quota_tokens_used=item.load.quota_tokens_used or 0,
                pages_fetched_ahead=item.pages_fetched_ahead,
                facts=facts,
                preview=item.preview,
            )
        )
    return results


def _fetch_report(
    reports: Ga4Reports,
    report: ReportDefinition,
    window: MonthWindow,
    spool: Path,
    load_id: str,
    log: logging.Logger,
    currency_code: str | None,
    now: datetime,
) -> _FetchedReport:
    """Every page of one report for the month, spooled to Parquet, and its load record."""
    log.info(
        "property %s report %s window %s..%s: fetching",
        reports.property_id, report.name, window.start, window.end,
    )  # fmt: skip
    # A month may arrive in several date windows (GA's "(other)" row makes the client halve
    # them); the partition is the union of every window's latest attempt.
    spooler = _Spooler(window)
    tokens_before, requests_before = reports.tokens_spent, reports.report_requests
    ahead_before = reports.answered_ahead
    quota: QuotaStatus | None = None
    preview: list[dict[str, object]] | None = None
    fetching = reports.iter_pages(
        report, start=window.start, end=window.end, currency_code=currency_code
    )
    for fetched, page in enumerate(fetching, start=1):
        quota = page.quota or quota
        if page.table.num_rows and preview is None:
            preview = page.table.slice(0, PREVIEW_ROWS).to_pylist()
        spooler.add(page, spool / f"page-{fetched:05d}.parquet")
        log.info(
            "property %s report %s window %s page %d: %d rows (%d in the window)",
            reports.property_id, report.name, page.window, fetched, page.table.num_rows,
            page.row_count,
        )  # fmt: skip
    kept = spooler.kept()
    rows_per_page = [n for w in kept for n in w.rows_per_page]
    rows = sum(rows_per_page)
    flags = _merged_flags([w.flags for w in kept if w.flags is not None])
    tokens_used = reports.tokens_spent - tokens_before
    if rows == 0:
        log.warning(
            "property %s report %s window %s..%s is empty",
            reports.property_id, report.name, window.start, window.end,
        )  # fmt: skip
    time_zone = flags.time_zone if flags else "UTC"
    load = LoadRecord(
        load_id=load_id,
        property_id=reports.property_id,
        partition_month=window.month,
        report=report.name,
        window_start=window.start,
        window_end=window.end,
        rows_reported=sum(w.row_count for w in kept),
        rows_landed=rows,
        pages=len(rows_per_page),
        requests=reports.report_requests - requests_before,
        quota_tokens_used=tokens_used if quota else None,
        quota_tokens_remaining_daily=quota.tokens_per_day_remaining if quota else None,
        quota_tokens_remaining_hourly=quota.tokens_per_hour_remaining if quota else None,
        currency_code=flags.currency_code if flags else "",
        time_zone=time_zone,
        data_loss_from_other_row=bool(flags and flags.data_loss_from_other_row),
        subject_to_thresholding=bool(flags and flags.subject_to_thresholding),
        sampling_metadata=json.dumps({"windows": [w.summary() for w in kept]}),
        is_final=today_in(time_zone, now=now) >= window.end + FINAL_AFTER,
        loaded_at=now,
    )
    return _FetchedReport(
        report=report,
        load=load,
        files=[path for w in kept for path in w.files],
        held=spooler.held_table(),
        rows_per_page=rows_per_page,
        flags=flags,
        quota=quota,
        pages_fetched_ahead=reports.answered_ahead - ahead_before,
        preview=preview,
    )


def _merged_flags(window_flags: list[ResponseFlags]) -> ResponseFlags | None:
    """The month's flags: a flag raised in any window is raised for the month."""
    if not window_flags:
        return None
    last = window_flags[-1]
    return ResponseFlags(
        currency_code=last.currency_code,
        time_zone=last.time_zone,
        data_loss_from_other_row=any(f.data_loss_from_other_row for f in window_flags),
        subject_to_thresholding=any(f.subject_to_thresholding for f in window_flags),
        sampling=tuple(s for f in window_flags for s in f.sampling),
        empty_reason=last.empty_reason,
    )
