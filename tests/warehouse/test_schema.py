"""The schema: created once, upgraded by version, and in step with the connector's reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.reports import REPORTS, column_name
from tests.warehouse.spool import CONTRACT_TYPES
from warehouse.connection import WarehouseError, reader, writer
from warehouse.schema import ensure_schema, latest_schema_version

LOAD_METADATA = [
    ("load_id", "VARCHAR"),
    ("loaded_at", "TIMESTAMP WITH TIME ZONE"),
    ("currency_code", "VARCHAR"),
    ("time_zone", "VARCHAR"),
    ("data_loss_from_other_row", "BOOLEAN"),
    ("subject_to_thresholding", "BOOLEAN"),
]
DUCKDB_NAMES = {"date32[day]": "DATE", "int64": "BIGINT", "double": "DOUBLE"}


def _columns(db: Path, table: str) -> list[tuple[str, str]]:
    with reader(db) as con:
        return [(row[0], row[1]) for row in con.execute(f"describe {table}").fetchall()]


def test_ensure_schema_is_idempotent(db: Path) -> None:
    assert ensure_schema(db) == latest_schema_version()
    assert ensure_schema(db) == latest_schema_version()
    with reader(db) as con:
        versions = con.execute("select version from main.schema_version").fetchall()
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()}
    assert versions == [(latest_schema_version(),)]
    assert {"raw", "staging", "marts"} <= schemas


@pytest.mark.parametrize("report_name", sorted(REPORTS))
def test_raw_table_columns_follow_the_report_contract(db: Path, report_name: str) -> None:
    """Partition key, then the report's dimensions and metrics as typed by the contract, then
    load metadata: a report change that the schema misses fails here."""
    report = REPORTS[report_name]
    expected = [("property_id", "VARCHAR"), ("partition_month", "DATE")]
    for api_name in (*report.dimensions, *report.metrics):
        name = column_name(api_name)
        arrow = str(CONTRACT_TYPES[name]) if name in CONTRACT_TYPES else "string"
        expected.append((name, DUCKDB_NAMES.get(arrow, "VARCHAR")))
    expected += LOAD_METADATA
    ensure_schema(db)
    assert _columns(db, report.raw_table) == expected


def test_load_tables_have_the_documented_columns(db: Path) -> None:
    ensure_schema(db)
    names = [name for name, _ in _columns(db, "raw.ga_loads")]
    assert names == [
        "load_id",
        "property_id",
        "partition_month",
        "report",
        "window_start",
        "window_end",
        "rows_reported",
        "rows_landed",
        "pages",
        "requests",
        "quota_tokens_used",
        "quota_tokens_remaining_daily",
        "quota_tokens_remaining_hourly",
        "currency_code",
        "time_zone",
        "data_loss_from_other_row",
        "subject_to_thresholding",
        "sampling_metadata",
        "is_final",
        "loaded_at",
    ]
    assert _columns(db, "raw.ga_load_history") == _columns(db, "raw.ga_loads")


def test_a_database_from_newer_code_is_not_written(db: Path) -> None:
    ensure_schema(db)
    with writer(db) as con:
        con.execute("insert into main.schema_version values (999, current_timestamp)")
    with pytest.raises(WarehouseError, match="newer than this code"):
        ensure_schema(db)
