"""A warehouse file that is garbage, truncated, damaged or unreadable stops `ga-ltv run` with an
error that names the file and the way out, and the file is left exactly as it was: never a
traceback, never a silent new empty database in its place."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.pipelines.support import cli_run_command
from tests.publishing.conftest import build_warehouse
from tests.reliability.conftest import Tally
from warehouse.connection import CorruptWarehouseError
from warehouse.models import build_ltv_tables

ENV = {
    "GA_LTV_EMULATOR": "127.0.0.1:9",  # never reached: the warehouse is checked first
    "GA_LTV_PROPERTIES": "123456789",
    "GA_LTV_START_MONTH": "2024-01",
}
# Damage done to a real warehouse file, by name.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda data: os.urandom(len(data) // 64),
    "empty": lambda data: b"",
    "header only": lambda data: data[:4096],
    "truncated to half": lambda data: data[: len(data) // 2],
    "zeroed second half": lambda data: data[: len(data) // 2] + bytes(len(data) - len(data) // 2),
}
# Without these capabilities root obeys file modes like any user does.
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def warehouse_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("real_warehouse")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=2).read_bytes()


def _assert_clear_error(stderr: str, db: Path) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    (error,) = [line for line in stderr.splitlines() if line.startswith("ga-ltv: error:")]
    assert str(db) in error
    assert "backup" in error and "GA" in error, error


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_file_is_refused_by_the_cli_and_left_untouched(
    damage: str,
    warehouse_bytes: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tally: Tally,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "ga.duckdb"
    content = DAMAGE[damage](warehouse_bytes)
    db.write_bytes(content)
    tally.fault(f"corrupt warehouse ({damage})")

    code = main(["run", "--start", "2024-01", "--end", "2024-02", "--duckdb", str(db)])

    assert code == 1
    _assert_clear_error(capsys.readouterr().err, db)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ga.duckdb", "ga.duckdb.lock"]
    # A rebuild (the writer's path) refuses it too, still without touching it.
    with pytest.raises(CorruptWarehouseError, match="backup"):
        build_ltv_tables(db)
    assert db.read_bytes() == content
    tally.survived_fault(f"corrupt warehouse ({damage})")


def test_unreadable_file_is_refused_by_the_cli_and_left_untouched(
    warehouse_bytes: bytes, tmp_path: Path, tally: Tally
) -> None:
    """chmod 000: run as a user the mode applies to (root, without its override capability)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root's override"
        prefix = DROP_DAC
    db = tmp_path / "ga.duckdb"
    db.write_bytes(warehouse_bytes)
    db.chmod(0)
    tally.fault("unreadable warehouse (chmod 000)")
    try:
        result = subprocess.run(
            [*prefix, *cli_run_command("2024-01", "2024-02", "--duckdb", str(db))],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        db.chmod(0o600)
    assert result.returncode == 1, result.stderr[-3000:]
    _assert_clear_error(result.stderr, db)
    assert "Permission denied" in result.stderr
    assert db.read_bytes() == warehouse_bytes
    tally.survived_fault("unreadable warehouse (chmod 000)")
