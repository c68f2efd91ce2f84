"""Another application's DuckDB file is refused untouched; files ga-ltv made keep working."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.spool import acquisition_row, land_acquisition
from warehouse.connection import ForeignDatabaseError, SchemaMismatchError, WarehouseError
from warehouse.schema import ensure_schema, latest_schema_version

JAN = date(2024, 1, 1)


def _make(db: Path, *statements: str) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _tables(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() order by 1"
        ).fetchall()
    finally:
        con.close()
    return [row[0] for row in rows]


def test_another_applications_database_is_refused_untouched(db: Path) -> None:
    _make(
        db,
        "create table main.clients (id integer, name varchar)",
        "insert into clients values (1, 'a')",
    )
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(ForeignDatabaseError) as refused:
        ensure_schema(db)
    message = str(refused.value)
    assert str(db) in message and "main.clients" in message
    assert "another application's database" in message and "GA_LTV_DUCKDB" in message
    assert isinstance(refused.value, WarehouseError)
    assert _tables(db) == ["main.clients"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_load_into_a_foreign_database_is_refused(db: Path, tmp_path: Path) -> None:
    _make(db, "create schema crm", "create view crm.people as select 1 as id")
    with pytest.raises(ForeignDatabaseError, match=r"crm\.people"):
        land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 3), 7)])
    assert _tables(db) == []


def test_an_empty_duckdb_file_is_taken(db: Path) -> None:
    _make(db)
    assert ensure_schema(db) == latest_schema_version()


def test_other_tables_beside_ours_are_fine(db: Path, tmp_path: Path) -> None:
    ensure_schema(db)
    _make(db, "create table main.notes (text varchar)")
    assert ensure_schema(db) == latest_schema_version()
    assert land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 3), 7)]) == 1


def test_a_load_table_with_other_columns_is_a_clear_error(db: Path, tmp_path: Path) -> None:
    """A foreign or much older raw.ga_loads: named, instead of DuckDB's BinderException."""
    ensure_schema(db)
    _make(
        db,
        "drop table raw.ga_loads",
        "create table raw.ga_loads (load_id varchar, property_id varchar, loaded_at timestamp)",
    )
    with pytest.raises(SchemaMismatchError) as refused:
        land_acquisition(db, tmp_path, JAN, [acquisition_row(date(2024, 1, 3), 7)])
    message = str(refused.value)
    assert str(db) in message
    assert "raw.ga_loads lacks the columns partition_month, report" in message
    assert "GA_LTV_DUCKDB" in message
