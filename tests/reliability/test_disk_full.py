"""A disk that fills up during a load: the error names the file or folder and says the disk is
full, the months landed before are untouched, and once space is freed the same command
completes. The disk is a small tmpfs mounted for the test (root only, as in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from pipelines.cli import main
from pipelines.runner import backfill
from pipelines.settings import PropertySettings, Settings
from tests.pipelines.support import cli_env, marts
from tests.reliability.conftest import Tally
from tests.reliability.support import check_raw_invariants, raw_partitions
from warehouse.connection import reader

PROPERTY_ID = "820001"
MONTHS = [f"2023-{m:02d}" for m in range(1, 7)]
BASELINE = MONTHS[:2]
DISK_SIZE = "16m"
NO_PUBLISHING = {"GA_LTV_EXTRACTS_DIR": "off", "GA_LTV_REPORT_DIR": "off"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=3, months=6, users=8_000, end=date(2023, 6, 30)
    )
    with EmulatorServer([prop]) as server:
        yield server.address


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    assert os.geteuid() == 0, (
        "the disk-full test mounts a tmpfs and needs root (CI runs as root); "
        "run it with sudo or in the CI container"
    )
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(mount_point)],
        check=True,
        timeout=30,
    )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=True, timeout=30)


def _fill(disk: Path, leave: int) -> Path:
    """Take all but ``leave`` bytes of the disk."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.write(bytes(max(0, shutil.disk_usage(disk).free - leave)))
    return filler


@pytest.mark.parametrize(
    ("full", "leave", "named"),
    [
        # Room for the spool pages but not for DuckDB's write-ahead log at commit.
        ("warehouse", 256 * 1024, "ga_ltv.duckdb"),
        # Not even room for the first page of the month waiting in the spool (pages of 200 rows,
        # so that a month has more than one: the last page of a report waits in memory).
        ("spool", 0, "spool folder"),
    ],
)
def test_full_disk_is_reported_and_landed_months_survive(
    full: str,
    leave: int,
    named: str,
    emulator: str,
    small_disk: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tally: Tally,
) -> None:
    env = cli_env(emulator, [PROPERTY_ID], small_disk, MONTHS[0]) | NO_PUBLISHING
    if full == "warehouse":
        env["GA_LTV_SPOOL_DIR"] = str(tmp_path / "spool")  # pages fit; only DuckDB runs out
    else:
        env["GA_LTV_PAGE_SIZE"] = "200"
    for name, value in env.items():
        if name.startswith("GA_LTV_"):
            monkeypatch.setenv(name, value)
    db = small_disk / "ga_ltv.duckdb"
    settings = Settings(
        properties=(PropertySettings(PROPERTY_ID),),
        emulator=emulator,
        duckdb_path=db,
        spool_dir=Path(env["GA_LTV_SPOOL_DIR"]),
        start_month=MONTHS[0],
    )
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=BASELINE, instance=instance)
    raw_before, marts_before = raw_partitions(db), marts(db)
    filler = _fill(small_disk, leave)
    tally.fault(f"disk full ({full})")
    capsys.readouterr()

    code = main(["run", "--start", MONTHS[0], "--end", MONTHS[-1]])

    stderr = capsys.readouterr().err
    assert code == 1
    error = stderr[stderr.index("ga-ltv: error:") :]
    assert "is full" in error and "no space left on device" in error.lower(), error
    assert named in error and str(small_disk) in error, error
    assert "Traceback" not in error
    with reader(db) as con:
        con.execute("select 1").fetchone()
    # A report that fitted before the disk filled may have landed whole; none landed in part.
    raw_after = raw_partitions(db)
    assert {key: raw_after[key] for key in raw_before} == raw_before
    check_raw_invariants(db, raw_after)
    assert marts(db) == marts_before
    tally.survived_fault(f"disk full ({full})")

    filler.unlink()
    assert main(["run", "--start", MONTHS[0], "--end", MONTHS[-1]]) == 0
    assert check_raw_invariants(db, raw_partitions(db)) == len(MONTHS) * 2
