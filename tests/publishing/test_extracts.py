"""CSV and Parquet extracts: exact round trips of hostile values, private files, atomic latest."""

from __future__ import annotations

import csv
import os
import stat
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.publishing.conftest import NASTY, SCRIPT_CAMPAIGN
from warehouse import extracts
from warehouse.connection import reader
from warehouse.extracts import LATEST, NothingToExtract, write_extracts
from warehouse.models import LTV_TABLES, build_ltv_tables


def _mart(db: Path, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with reader(db) as con:
        cursor = con.execute(f"select * from marts.{table}")  # noqa: S608 - names from LTV_TABLES
        return [d[0] for d in cursor.description], cursor.fetchall()


def _csv_field(value: object) -> str:
    """How a DuckDB value is expected to read back from the CSV file."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _records(path: Path) -> int:
    """Data rows in a CSV file, counted by a CSV reader (values may hold line breaks)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_csv_round_trips_every_value_exactly(warehouse_v1: Path, tmp_path: Path) -> None:
    result = write_extracts(warehouse_v1, tmp_path / "extracts")
    assert result.month == "2024-03"
    for table in LTV_TABLES:
        names, rows = _mart(warehouse_v1, table)
        with (result.folder / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            header, *records = list(csv.reader(handle))
        assert header == names
        assert len(records) == len(rows) == result.rows[table] > 0
        for record, row in zip(records, rows, strict=True):
            for field, value in zip(record, row, strict=True):
                if isinstance(value, float):
                    assert float(field) == value  # dot decimals, no precision lost
                else:
                    assert field == _csv_field(value)
    campaigns = {r[2] for r in _mart(warehouse_v1, "ltv_by_campaign")[1]}
    assert set(NASTY) <= campaigns
    raw = (result.folder / "ltv_by_campaign.csv").read_bytes()
    # A data file keeps values as they are, quotes doubled; records end in CRLF.
    assert SCRIPT_CAMPAIGN.replace('"', '""').encode() in raw
    assert raw.split(b"\n", 1)[0].endswith(b"\r") and raw.endswith(b"\r\n")


def test_parquet_matches_the_marts(warehouse_v1: Path, tmp_path: Path) -> None:
    result = write_extracts(warehouse_v1, tmp_path / "extracts")
    for table in LTV_TABLES:
        names, rows = _mart(warehouse_v1, table)
        data = pq.read_table(result.folder / f"{table}.parquet")
        assert data.column_names == names
        assert [tuple(r.values()) for r in data.to_pylist()] == rows


def test_month_folder_latest_and_modes(
    warehouse_v1: Path, warehouse_v2: Path, tmp_path: Path
) -> None:
    root = tmp_path / "extracts"
    first = write_extracts(warehouse_v1, root)
    second = write_extracts(warehouse_v2, root)
    assert (first.folder.name, second.folder.name) == ("2024-03", "2024-04")
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "2024-03",
        "2024-04",
        LATEST,
    ]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    latest_rows = _records(root / LATEST / "ltv_monthly.csv")
    assert latest_rows == second.rows["ltv_monthly"] != first.rows["ltv_monthly"]
    expected = {f"{t}.{f}" for t in LTV_TABLES for f in extracts.FORMATS}
    for folder in (root, first.folder, second.folder, root / LATEST):
        assert _mode(folder) == 0o700, folder
    for folder in (first.folder, second.folder, root / LATEST):
        assert {p.name for p in folder.iterdir()} == expected
        for path in folder.iterdir():
            assert _mode(path) == 0o600, path


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_latest_never_goes_missing_or_half_written(
    warehouse_v1: Path,
    warehouse_v2: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exchange: bool,
) -> None:
    """A reader opening ``latest`` while refreshes swap it finds a complete folder, all of one
    version. Without renameat2 the folder may be missing for an instant, never partial."""
    if not exchange:
        monkeypatch.setattr(extracts, "_exchange", lambda first, second: False)
    root = tmp_path / "extracts"
    versions = {write_extracts(db, root).rows["ltv_monthly"] for db in (warehouse_v1, warehouse_v2)}
    assert len(versions) == 2
    problems: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()
    read_once = threading.Event()

    def read_latest() -> None:
        while not stop.is_set():
            try:
                names = {p.name for p in (root / LATEST).iterdir()}
            except FileNotFoundError:
                if exchange:
                    problems.append("latest missing")
                continue
            if len(names) != len(LTV_TABLES) * len(extracts.FORMATS):
                problems.append(f"latest holds {sorted(names)}")
                continue
            try:
                seen.add(_records(root / LATEST / "ltv_monthly.csv"))
            except FileNotFoundError:
                continue  # swapped between listing and opening: the next loop reads it whole
            read_once.set()

    thread = threading.Thread(target=read_latest)
    thread.start()
    try:
        assert read_once.wait(10)
        for round_ in range(4):
            write_extracts(warehouse_v1 if round_ % 2 else warehouse_v2, root)
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert seen <= versions


def test_a_reader_inside_the_old_latest_keeps_a_whole_version(
    warehouse_v1: Path, warehouse_v2: Path, tmp_path: Path
) -> None:
    """A sync client that opened ``latest`` before a refresh still lists and reads every file
    of the version it opened, rather than watching them being deleted."""
    root = tmp_path / "extracts"
    old_rows = write_extracts(warehouse_v1, root).rows["ltv_monthly"]
    opened = os.open(root / LATEST, os.O_RDONLY | os.O_DIRECTORY)
    try:
        new_rows = write_extracts(warehouse_v2, root).rows["ltv_monthly"]
        assert sorted(os.listdir(opened)) == sorted(
            f"{t}.{f}" for t in LTV_TABLES for f in extracts.FORMATS
        )
        with open(  # relative to the folder the reader holds open
            "ltv_monthly.csv", encoding="utf-8", newline="", opener=_opener_in(opened)
        ) as handle:
            assert sum(1 for _ in csv.reader(handle)) - 1 == old_rows != new_rows
    finally:
        os.close(opened)
    assert _records(root / LATEST / "ltv_monthly.csv") == new_rows


def _opener_in(folder_fd: int) -> Any:
    return lambda name, flags: os.open(name, flags, dir_fd=folder_fd)


def test_retired_folders_and_abandoned_staging_are_swept_after_the_grace_time(
    warehouse_v1: Path, warehouse_v2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "extracts"
    write_extracts(warehouse_v1, root)
    write_extracts(warehouse_v2, root)
    write_extracts(warehouse_v2, root)
    retired = {p.name for p in root.glob(".retired-*")}
    assert len(retired) == 3, "latest twice and 2024-04 once"
    abandoned = root / ".tmp-killed-writer"
    abandoned.mkdir()
    (abandoned / "ltv_monthly.csv").write_text("half")
    monkeypatch.setattr(extracts, "RETIRED_GRACE_SECONDS", 0)
    write_extracts(warehouse_v1, root)
    left = {p.name for p in root.iterdir() if p.name.startswith(".")}
    assert not left & retired and not abandoned.exists()
    assert left - {".lock"}, "the folders this refresh replaced stay until the next one"


def test_empty_marts_write_nothing(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    build_ltv_tables(db)
    with pytest.raises(NothingToExtract):
        write_extracts(db, tmp_path / "extracts")
    assert [p.name for p in (tmp_path / "extracts").iterdir()] == [".lock"]
