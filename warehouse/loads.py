"""Land one report partition (property x month) so that a rerun replaces it, never doubles it.

GA data for a month can still change for about two days after it ends and a partition may be
fetched again at any time, so a load deletes the partition's rows and inserts the new spool in
one transaction, together with its ``raw.ga_loads`` row. A failure leaves the previous load whole.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.reports import DATE_DIMENSIONS, ReportDefinition, column_name
from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    quote_identifier,
    quote_qualified,
    rollback,
    writer,
)
from warehouse.schema import LOAD_METADATA_COLUMNS, PARTITION_COLUMNS, apply_migrations
from warehouse.schema import report_columns as spool_columns
from warehouse.sql_files import read_sql

logger = logging.getLogger(__name__)

_ARROW_TYPE_CHECKS = {
    "VARCHAR": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "DATE": pa.types.is_date32,
    "BIGINT": lambda t: t == pa.int64(),
    "DOUBLE": lambda t: t == pa.float64(),
}


# DuckDB settings of a load's connection. A load reads a few spool files of at most a page each:
# more threads split each file and contend (one thread inserted a 120,000-row page 2.5x faster
# here, next to the emulator), and a memory limit keeps the checkpoint at commit from pushing the
# process past a backfill's memory budget; DuckDB spills beyond it.
LOAD_CONNECTION: dict[str, str | int] = {"threads": 1, "memory_limit": "128MB"}


class SpoolError(ValueError):
    """A spool file does not match its report's columns, or its rows fall outside the window."""


@dataclass(frozen=True, kw_only=True)
class LoadRecord:
    """What the pipeline knows about one fetch of one report partition: a ``raw.ga_loads`` row.

    ``rows_landed`` may be left out: the warehouse records what it inserted, and refuses the
    load when a given count disagrees with the spool files. ``loaded_at`` defaults to now.
    """

    property_id: str
    report: str
    partition_month: date
    window_start: date
    window_end: date
    rows_reported: int  # GA's rowCount for the whole report
    rows_landed: int | None = None
    pages: int
    requests: int
    quota_tokens_used: int | None
    quota_tokens_remaining_daily: int | None
    quota_tokens_remaining_hourly: int | None
    currency_code: str | None
    time_zone: str | None
    data_loss_from_other_row: bool
    subject_to_thresholding: bool
    sampling_metadata: str | None  # JSON: per-window flags, pages and sampling
    is_final: bool  # the month was over long enough that GA will not change it any more
    load_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    loaded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.property_id.isascii() or not self.property_id.isdigit():
            hint = ""
            if "-" in self.property_id:
                hint = " (a G-... measurement id is not a property id)"
            raise ValueError(f"property_id must be the numeric GA4 property id{hint}")
        if self.partition_month.day != 1:
            raise ValueError(f"partition_month must be a first of month: {self.partition_month}")
        month_end = _next_month(self.partition_month)
        if not self.partition_month <= self.window_start <= self.window_end < month_end:
            raise ValueError(
                f"window {self.window_start}..{self.window_end} is not inside the partition "
                f"month {self.partition_month:%Y-%m}"
            )
        if self.sampling_metadata is not None:
            json.loads(self.sampling_metadata)
        if self.loaded_at is not None and self.loaded_at.tzinfo is None:
            raise ValueError("loaded_at must carry a time zone")


@dataclass(frozen=True)
class PartitionLoad:
    """One report partition to replace: its load record and where its rows are, spool files
    and pages still in memory."""

    report: ReportDefinition
    load: LoadRecord
    parquet_files: Sequence[Path]
    pages: Sequence[pa.Table] = ()


@dataclass(frozen=True)
class ReplacedPartition:
    """What replacing one partition did: rows removed, rows inserted."""

    deleted: int
    inserted: int


def replace_partition(
    db_path: str | os.PathLike[str],
    *,
    report: ReportDefinition,
    load: LoadRecord,
    parquet_files: Sequence[Path],
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> int:
    """Replace the partition's rows with the spool files' rows; returns the rows inserted.

    Zero files is an empty month and still a successful load: the partition is emptied and
    recorded as loaded.
    """
    [replaced] = replace_partitions(
        db_path, [PartitionLoad(report, load, parquet_files)], lock_timeout=lock_timeout
    )
    return replaced.inserted


def replace_partitions(
    db_path: str | os.PathLike[str],
    loads: Sequence[PartitionLoad],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    after_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> list[ReplacedPartition]:
    """Replace several partitions in one transaction (a month's reports land together or not at
    all); returns what was deleted and inserted for each.

    `after_commit` runs on the same connection once the loads are committed, so reading the
    partitions back (the asset checks do) does not open the file again.
    """
    for item in loads:
        if item.load.report != item.report.name:
            raise ValueError(
                f"load record is for report {item.load.report!r}, not {item.report.name!r}"
            )
        for path in item.parquet_files:
            _check_spool_file(str(path), spool_columns(item.report))
        for page in item.pages:
            _check_spool_schema(page.schema, spool_columns(item.report), "a page in memory")
    with writer(db_path, lock_timeout=lock_timeout, config=LOAD_CONNECTION) as con:
        apply_migrations(con)
        con.execute("begin transaction")
        try:
            counts = [_replace(con, item) for item in loads]
            con.execute("commit")
        except BaseException:
            rollback(con)
            raise
        if after_commit is not None:
            after_commit(con)
    for item, (deleted, inserted) in zip(loads, counts, strict=True):
        load = item.load
        # DEBUG: the caller reports the write in its own log (Dagster's, in a run).
        logger.debug(
            "replaced %s partition property=%s month=%s: deleted %d rows, inserted %d from "
            "%d pages",
            item.report.name,
            load.property_id,
            f"{load.partition_month:%Y-%m}",
            deleted,
            inserted,
            len(item.parquet_files) + len(item.pages),
        )
        if inserted != load.rows_reported:
            logger.warning(
                "%s partition property=%s month=%s landed %d rows but GA reported %d",
                item.report.name,
                load.property_id,
                f"{load.partition_month:%Y-%m}",
                inserted,
                load.rows_reported,
            )
    return [ReplacedPartition(deleted, inserted) for deleted, inserted in counts]


def _replace(con: duckdb.DuckDBPyConnection, item: PartitionLoad) -> tuple[int, int]:
    """Inside the caller's transaction: delete the partition, insert its spool, record the
    load; returns (rows deleted, rows inserted)."""
    report, load = item.report, item.load
    files = [str(Path(f)) for f in item.parquet_files]
    table = quote_qualified(report.raw_table)
    loaded_at = load.loaded_at or datetime.now(UTC)
    # Identifiers below are validated and quoted; every value is a bound parameter.
    delete_sql = (
        f"delete from {table}\n"  # noqa: S608
        " where property_id = ? and partition_month = ?"
    )
    deleted = _count(con.execute(delete_sql, [load.property_id, load.partition_month]))
    inserted = 0
    if files or item.pages:
        inserted = _insert_spool(
            con, table, spool_columns(report), files, item.pages, load, loaded_at
        )
        _check_window(con, table, report, load)
    if load.rows_landed is not None and load.rows_landed != inserted:
        raise SpoolError(
            f"the spool files hold {inserted} rows but the load record says "
            f"{load.rows_landed} were written; refusing a partial spool"
        )
    _record_load(con, report, load, rows_landed=inserted, loaded_at=loaded_at)
    return deleted, inserted


def _check_spool_file(path: str, columns: tuple[tuple[str, str], ...]) -> None:
    """Fail before touching the warehouse if a file's columns differ from the report's."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise SpoolError(f"spool file {path} is not readable Parquet: {exc}") from exc
    _check_spool_schema(schema, columns, f"spool file {path}")


def _check_spool_schema(schema: pa.Schema, columns: tuple[tuple[str, str], ...], what: str) -> None:
    expected = dict(columns)
    extra = sorted(set(schema.names) - set(expected))
    if extra:
        raise SpoolError(f"{what} has columns the report does not: {extra}")
    for name, duck_type in columns:
        if name not in schema.names:
            raise SpoolError(f"{what} lacks column {name}")
        arrow_type = schema.field(name).type
        if not _ARROW_TYPE_CHECKS[duck_type](arrow_type):
            raise SpoolError(f"{what} column {name} is {arrow_type}, expected {duck_type}")


def _insert_spool(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[tuple[str, str], ...],
    files: list[str],
    pages: Sequence[pa.Table],
    load: LoadRecord,
    loaded_at: datetime,
) -> int:
    """Insert the spool's rows with the partition and load metadata on every row."""
    report_cols = [quote_identifier(name) for name, _ in columns]
    target = [quote_identifier(c) for c in (*PARTITION_COLUMNS, *LOAD_METADATA_COLUMNS)]
    target_list = ", ".join([*target[:2], *report_cols, *target[2:]])
    sources = ["select * from read_parquet($files)"] if files else []
    held = [f"held_page_{index}" for index in range(len(pages))]
    for name, page in zip(held, pages, strict=True):
        con.register(name, page)
        sources.append(f"select * from {quote_identifier(name)}")  # noqa: S608
    # Identifiers are validated and quoted or made here; every value is a bound parameter.
    sql = (
        f"insert into {table} ({target_list})\n"  # noqa: S608
        "select $property_id, $partition_month, "
        + ", ".join(report_cols)
        + ", $load_id, $loaded_at, $currency_code, $time_zone,"
        " $data_loss_from_other_row, $subject_to_thresholding\n"
        "  from (" + " union all by name ".join(sources) + ")"
    )
    params = {
        "property_id": load.property_id,
        "partition_month": load.partition_month,
        "load_id": load.load_id,
        "loaded_at": loaded_at,
        "currency_code": load.currency_code,
        "time_zone": load.time_zone,
        "data_loss_from_other_row": load.data_loss_from_other_row,
        "subject_to_thresholding": load.subject_to_thresholding,
    }
    if files:
        params["files"] = files
    try:
        return _count(con.execute(sql, params))
    finally:
        for name in held:
            con.unregister(name)


def _check_window(
    con: duckdb.DuckDBPyConnection, table: str, report: ReportDefinition, load: LoadRecord
) -> None:
    """Refuse rows dated outside the fetched window: they belong to another partition.

    A NULL date is allowed: the client gives GA's "(other)" row NULL dates, and the row is kept
    as landed (its flag is on the load) though no cohort can claim it.
    """
    first = report.dimensions[0]
    if first not in DATE_DIMENSIONS:
        raise ValueError(f"report {report.name} must lead with its date dimension, not {first}")
    date_col = quote_identifier(column_name(first))
    # Identifiers are validated and quoted; every value is a bound parameter.
    row = con.execute(
        f"select count(*), min({date_col}), max({date_col})\n"  # noqa: S608
        f"  from {table}\n"
        " where property_id = ?\n"
        "   and partition_month = ?\n"
        f"   and {date_col} not between ? and ?",
        [load.property_id, load.partition_month, load.window_start, load.window_end],
    ).fetchone()
    if row and row[0]:
        raise SpoolError(
            f"{row[0]} {report.name} rows have {column_name(first)} outside the window "
            f"{load.window_start}..{load.window_end} (seen {row[1]}..{row[2]}); "
            "the spool does not belong to this partition"
        )


def _record_load(
    con: duckdb.DuckDBPyConnection,
    report: ReportDefinition,
    load: LoadRecord,
    *,
    rows_landed: int,
    loaded_at: datetime,
) -> None:
    """Make this load the partition's current one and append it to the history."""
    values = asdict(load) | {
        "rows_landed": rows_landed,
        "loaded_at": loaded_at,
    }
    con.execute(
        "delete from raw.ga_loads where property_id = ? and partition_month = ? and report = ?",
        [load.property_id, load.partition_month, report.name],
    )
    con.execute(read_sql("loads/insert_load.sql"), values)
    con.execute(
        "insert into raw.ga_load_history\n"
        "select *\n"
        "  from raw.ga_loads\n"
        " where property_id = ? and partition_month = ? and report = ?",
        [load.property_id, load.partition_month, report.name],
    )


def _count(result: duckdb.DuckDBPyConnection) -> int:
    """The row count DuckDB returns for an insert or delete."""
    row = result.fetchone()
    return int(row[0]) if row else 0


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)
