"""Opening the warehouse file: permissions, refusing foreign files, the cross-process lock."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from warehouse import connection
from warehouse.connection import (
    CorruptWarehouseError,
    WarehouseError,
    WarehouseLockTimeout,
    lock_path,
    quote_identifier,
    reader,
    writer,
)
from warehouse.schema import ensure_schema


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_and_lock_are_private_and_folder_is_created(db: Path) -> None:
    """A fresh warehouse holds revenue: only its owner may read it or its lock file."""
    assert not db.parent.exists()
    ensure_schema(db)
    assert _mode(db) == 0o600
    assert _mode(lock_path(db)) == 0o600
    assert not (_mode(db.parent) & 0o077)


@pytest.mark.parametrize(
    "content",
    [
        b"",  # truncated to nothing, e.g. a disk that filled up
        b"not a database at all\n" * 50,  # another file under the warehouse name
        b"SQLite format 3\x00" + bytes(4080),  # a database, but not DuckDB
    ],
)
def test_foreign_file_is_refused_and_left_untouched(db: Path, content: bytes) -> None:
    """Never replace what is there with an empty warehouse: the error says how to recover."""
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(CorruptWarehouseError) as raised:
        ensure_schema(db)
    message = str(raised.value)
    assert str(db) in message
    assert "backup" in message
    assert "GA" in message
    assert db.read_bytes() == content
    with pytest.raises(CorruptWarehouseError), reader(db):
        pass


def test_reader_needs_an_existing_database(db: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"), reader(db):
        pass
    assert not db.exists()


def test_writer_waits_then_times_out_with_a_clear_error(db: Path) -> None:
    """A second writer (here a reader too) gives up after its timeout and names the lock."""
    ensure_schema(db)
    with writer(db) as con:
        con.execute("select 1")
        with (
            pytest.raises(WarehouseLockTimeout, match=r"ga\.duckdb\.lock"),
            writer(db, lock_timeout=0.2),
        ):
            pass
        with pytest.raises(WarehouseLockTimeout, match="read lock"), reader(db, lock_timeout=0.2):
            pass


def test_readers_share_the_lock(db: Path) -> None:
    ensure_schema(db)
    with reader(db) as first, reader(db, lock_timeout=0.2) as second:
        assert first.execute("select 1").fetchone() == second.execute("select 1").fetchone()


@pytest.mark.parametrize(
    "name",
    ['x"; drop table raw.ga_loads; --', "Upper", "1starts_with_digit", "with space", "", "a.b"],
)
def test_quote_identifier_refuses_anything_but_plain_names(name: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        quote_identifier(name)


def test_quote_identifier_quotes_plain_names() -> None:
    assert quote_identifier("ltv_by_channel") == '"ltv_by_channel"'


def test_a_long_wait_for_the_lock_says_what_it_waits_for(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_schema(db)
    monkeypatch.setattr(connection, "_TELL_WAIT_AFTER_SECONDS", 0.05)
    caplog.set_level("INFO", logger="warehouse.connection")
    with writer(db), pytest.raises(WarehouseLockTimeout), writer(db, lock_timeout=0.3):
        pass
    told = [r.getMessage() for r in caplog.records if "in use by another process" in r.message]
    assert told == [f"warehouse {db} is in use by another process; waiting up to 0s"]


def test_writer_waits_for_a_program_outside_the_lock_protocol(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An analyst's SQL client holding DuckDB's own lock delays a load instead of failing it,
    and the load says why it waits."""
    caplog.set_level("INFO", logger="warehouse.connection")
    import subprocess
    import sys
    import time

    with writer(db) as con:
        con.execute("create table t as select 1 as x")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(1.5)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with writer(db) as con:
        con.execute("insert into t values (2)")
    waited = time.monotonic() - started
    holder.wait()
    assert waited > 0.5
    assert "is open in another program; waiting up to 60s" in caplog.text
    with reader(db) as con:
        assert con.execute("select count(*) from t").fetchone() == (2,)


def test_a_folder_given_as_the_warehouse_is_named_as_such(tmp_path: Path) -> None:
    refused = pytest.raises(WarehouseError, match="is a folder; the warehouse is a file")
    with refused, writer(tmp_path):
        pass
    assert tmp_path.is_dir() and [p.name for p in tmp_path.iterdir()] == []
    assert not tmp_path.with_name(tmp_path.name + ".lock").exists(), "no lock file beside it"
