"""A warehouse in a folder that cannot be written is a clear error naming the path.

Root ignores file modes, so the folder is a read-only tmpfs mount when running as root, and a
chmod 0555 folder otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.publishing.services import missing
from warehouse.connection import UnwritableWarehouseError, WarehouseError, reader
from warehouse.schema import ensure_schema


def _mount(folder: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=1m,{options}", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only folder that already holds a warehouse made while it was writable."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        ensure_schema(folder / "ga.duckdb")
        folder.chmod(0o555)
        (folder / "ga.duckdb.lock").chmod(0o400)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    try:
        _mount(folder, "mode=0755")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        missing("a read-only tmpfs mount", f"root and mount(8); here: {exc}")
    try:
        ensure_schema(folder / "ga.duckdb")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize(
    ("name", "unwritable"),
    [
        ("new.duckdb", "new.duckdb.lock"),
        ("sub/ga.duckdb", "sub"),
        ("ga.duckdb", "ga.duckdb.lock"),
    ],
)
def test_a_read_only_folder_is_a_clear_error(read_only: Path, name: str, unwritable: str) -> None:
    db = read_only / name
    with pytest.raises(UnwritableWarehouseError) as refused:
        ensure_schema(db)
    message = str(refused.value)
    assert message.startswith(f"{read_only / unwritable} cannot be written (")
    assert f"the warehouse {db} needs it" in message
    assert "choose a writable folder for --duckdb / GA_LTV_DUCKDB" in message
    assert isinstance(refused.value, WarehouseError)
    assert refused.value.__cause__ is None


def test_reading_there_names_the_lock_file(read_only: Path) -> None:
    """Readers take a shared lock on a lock file opened for writing: named, not a bare OSError."""
    refused = pytest.raises(UnwritableWarehouseError, match=r"ga\.duckdb\.lock cannot be written")
    with refused, reader(read_only / "ga.duckdb"):
        pass
