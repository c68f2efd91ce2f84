"""Create and upgrade the warehouse schema: ``raw`` as landed, ``staging``, ``marts``.

Each file ``warehouse/sql/schema/NNN_*.sql`` is one schema version, applied once and recorded in
``main.schema_version``; opening an older file applies only the missing versions, in one
transaction, so a half-upgraded database cannot exist.
"""

from __future__ import annotations

import functools
import logging
import os

import duckdb

from connectors.reports import DATE_DIMENSIONS, ReportDefinition, column_name
from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    ForeignDatabaseError,
    SchemaMismatchError,
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
    """Apply the schema versions ``con`` lacks in one transaction; returns the resulting version.

    A database with tables but no ``schema_version`` belongs to someone else and is refused
    untouched; tables of ours whose columns differ from what the code writes are refused too.
    """
    _refuse_foreign(con)
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
        _check_columns(con)
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
    _check_columns(con)
    return latest


def _database_path(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return str(row[0]) if row and row[0] else "the database"


def _refuse_foreign(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a database that has tables or views but was never given a schema by ga-ltv."""
    ours = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database()"
        " and schema_name = 'main' and table_name = 'schema_version'"
    ).fetchone()
    if ours and ours[0]:
        return
    found = con.execute(
        "select schema_name || '.' || table_name as name from duckdb_tables()"
        " where database_name = current_database() and not internal"
        " union all select schema_name || '.' || view_name from duckdb_views()"
        " where database_name = current_database() and not internal"
        " order by name limit 6"
    ).fetchall()
    if not found:
        return
    names = ", ".join(row[0] for row in found[:5]) + (", ..." if len(found) > 5 else "")
    raise ForeignDatabaseError(
        f"{_database_path(con)} already holds tables ({names}) but no ga-ltv schema_version: "
        "it looks like another application's database and was left untouched. Choose another "
        "--duckdb / GA_LTV_DUCKDB path."
    )


def _check_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse tables of ours that lack columns the code writes, before a load fails midway."""
    rows = con.execute(
        "select schema_name, table_name, column_name from duckdb_columns()"
        " where database_name = current_database()"
    ).fetchall()
    actual: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in rows:
        actual.setdefault((schema, table), set()).add(column)
    for (schema, table), expected in _expected_columns().items():
        have = actual.get((schema, table))
        missing = [c for c in expected if have is not None and c not in have]
        if have is None or missing:
            lacks = f"lacks the columns {', '.join(missing)}" if missing else "is missing"
            raise SchemaMismatchError(
                f"{_database_path(con)}: table {schema}.{table} {lacks} that this ga-ltv "
                "writes (another application's table, or a much older schema). Choose "
                "another --duckdb / GA_LTV_DUCKDB path, or move the file aside and reload."
            )


@functools.cache
def _expected_columns() -> dict[tuple[str, str], tuple[str, ...]]:
    """Each table the schema files create, with its columns: built once in memory."""
    con = duckdb.connect(":memory:")
    try:
        for _, file_name in sorted(_migration_versions().items()):
            con.execute(read_sql(f"{_MIGRATIONS_FOLDER}/{file_name}"))
        rows = con.execute(
            "select schema_name, table_name, column_name from duckdb_columns()"
            " where database_name = current_database() and schema_name <> 'main'"
            " order by schema_name, table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    expected: dict[tuple[str, str], tuple[str, ...]] = {}
    for schema, table, column in rows:
        expected[(schema, table)] = (*expected.get((schema, table), ()), column)
    return expected


def _migration_versions() -> dict[int, str]:
    """Schema version -> file name, from the ``NNN_`` prefix of each schema file."""
    versions: dict[int, str] = {}
    for name in sql_names(_MIGRATIONS_FOLDER):
        prefix = name.split("_", 1)[0]
        if not prefix.isdigit():
            raise WarehouseError(f"schema file {name} does not start with a version number")
        versions[int(prefix)] = name
    return versions
