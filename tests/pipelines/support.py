"""Helpers for tests that run backfills the way a user does (the CLI in a subprocess) and then
read the warehouse it left behind."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import duckdb

from pipelines.settings import PropertySettings, Settings
from warehouse.connection import WarehouseLockTimeout, quote_identifier, reader
from warehouse.models import LTV_TABLES


def emulator_settings(
    address: str | None,
    folder: Path,
    property_ids: Iterable[str],
    start_month: str,
    **overrides: object,
) -> Settings:
    """Settings for a backfill in-process against an emulator, with its files in ``folder``."""
    return Settings(
        properties=tuple(PropertySettings(pid) for pid in property_ids),
        emulator=address,
        duckdb_path=folder / "ga_ltv.duckdb",
        spool_dir=folder / "spool",
        start_month=start_month,
        **overrides,  # type: ignore[arg-type]
    )


def cli_env(
    address: str, property_ids: Iterable[str], folder: Path, start_month: str
) -> dict[str, str]:
    """The environment of a ``ga-ltv run`` against an emulator, with its files in ``folder``."""
    return {
        **os.environ,
        "GA_LTV_EMULATOR": address,
        "GA_LTV_PROPERTIES": ",".join(property_ids),
        "GA_LTV_DUCKDB": str(folder / "ga_ltv.duckdb"),
        "GA_LTV_SPOOL_DIR": str(folder / "spool"),
        "GA_LTV_START_MONTH": start_month,
    }


def cli_run_command(start: str, end: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "--start", start, "--end", end, *extra]


def existing_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).fetchall()
    return sorted(name for (name,) in rows if name in LTV_TABLES)


def marts(db_path: Path) -> dict[str, list[tuple]]:
    """Every LTV mart that exists, all rows in a stable order, for row-by-row comparison."""
    with reader(db_path) as con:
        return {
            table: con.execute(
                f"select * from marts.{quote_identifier(table)} order by all"  # noqa: S608
            ).fetchall()
            for table in existing_marts(con)
        }


def loads_landed(db_path: Path) -> int:
    """Report partitions landed so far, read under the warehouse's shared lock."""
    if not db_path.exists():
        return 0
    try:
        with reader(db_path, lock_timeout=1.0) as con:
            return con.execute("select count(*) from raw.ga_loads").fetchone()[0]
    except (WarehouseLockTimeout, duckdb.CatalogException):
        return 0  # busy, or the schema is not there yet; ask again
