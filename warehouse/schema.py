"""Create and upgrade the warehouse schema: ``raw`` as landed, ``staging``, ``marts``.

Each file ``warehouse/sql/schema/NNN_*.sql`` is one schema version, applied once and recorded in
``main.schema_version``; opening an older file applies only the missing versions, in one
transaction, so a half-upgraded database cannot exist.
"""

from __future__ import annotations

import logging
import os

import duckdb

from connectors.reports import DATE_DIMENSIONS, ReportDefinition, column_name
from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    WarehouseError,
    rollback,
    writer,
)
from warehouse.sql_files import read_sql, sql_names

logger = logging.getLogger(__name__)

# DuckDB type of each GA metric column in the raw tables and the spool files.
METRIC_TYPES: dict[str, str] = {
    "new_users": "BIGINT",
    "transactions": "BIGINT",
    "ecommerce_purchases": "BIGINT",
    "sessions": "BIGINT",
    "screen_page_views": "BIGINT",
    "total_revenue": "DOUBLE",
    "purchase_revenue": "DOUBLE",
    "user_engagement_duration": "DOUBLE",
}

# Columns every raw row carries besides the report's, in table order.
PARTITION_COLUMNS = ("property_id", "partition_month")
LOAD_METADATA_COLUMNS = (
    "load_id",
    "loaded_at",
    "currency_code",
    "time_zone",
    "data_loss_from_other_row",
    "subject_to_thresholding",
)

_MIGRATIONS_FOLDER = "schema"


def report_columns(report: ReportDefinition) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of a report's spool files: its dimensions, then its metrics."""
    columns = [
        (column_name(name), "DATE" if name in DATE_DIMENSIONS else "VARCHAR")
        for name in report.dimensions
    ]
    for name in report.metrics:
        column = column_name(name)
        if column not in METRIC_TYPES:
            raise KeyError(f"metric {name} of report {report.name} has no warehouse type")
        columns.append((column, METRIC_TYPES[column]))
    return tuple(columns)


def latest_schema_version() -> int:
    """The version the code's schema files lead to."""
    return max(_migration_versions())


def ensure_schema(
    db_path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> int:
    """Create the database and bring its schema up to date; safe to call any number of times."""
    with writer(db_path, lock_timeout=lock_timeout) as con:
        return apply_migrations(con)


def apply_migrations(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the schema versions ``con`` lacks in one transaction; returns the resulting version."""
    con.execute(
        "create table if not exists main.schema_version ("
        " version integer primary key, applied_at timestamptz not null)"
    )
    row = con.execute("select coalesce(max(version), 0) from main.schema_version").fetchone()
    current = int(row[0]) if row else 0
    available = _migration_versions()
    latest = max(available)
    if current > latest:
        raise WarehouseError(
            f"the database is at schema version {current}, newer than this code ({latest}); "
            "upgrade ga-ltv before writing to it"
        )
    pending = {version: name for version, name in available.items() if version > current}
    if not pending:
        return current
    con.execute("begin transaction")
    try:
        for version in sorted(pending):
            con.execute(read_sql(f"{_MIGRATIONS_FOLDER}/{pending[version]}"))
            con.execute("insert into main.schema_version values (?, current_timestamp)", [version])
            logger.info("applied warehouse schema version %d (%s)", version, pending[version])
        con.execute("commit")
    except BaseException:
        rollback(con)
        raise
    return latest


def _migration_versions() -> dict[int, str]:
    """Schema version -> file name, from the ``NNN_`` prefix of each schema file."""
    versions: dict[int, str] = {}
    for name in sql_names(_MIGRATIONS_FOLDER):
        prefix = name.split("_", 1)[0]
        if not prefix.isdigit():
            raise WarehouseError(f"schema file {name} does not start with a version number")
        versions[int(prefix)] = name
    return versions
