"""Everything a run writes holds customer revenue, so only its owner may read it: the DuckDB
file and its lock, the spool where GA pages wait (and stay, after a crash), the extracts and
the HTML report; even under the common umask 022. That the dashboards' PostgreSQL role can
read and not write is shown by tests/publishing/test_publish_postgres.py
(test_reader_role_can_select_and_nothing_else)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from pipelines.runner import backfill
from pipelines.settings import PropertySettings, Settings

PROPERTY_ID = "850001"
MONTHS = ["2023-01", "2023-02"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def private_modes(root: Path) -> dict[str, str]:
    """Paths under ``root`` that a group or other user could open, with their modes."""
    return {
        str(path.relative_to(root)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [root, *root.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }


def test_everything_written_is_owner_only(tmp_path: Path, umask_022: None) -> None:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=4, months=2, users=1_000, end=date(2023, 2, 28)
    )
    data = tmp_path / "data"
    settings = Settings(
        properties=(PropertySettings(PROPERTY_ID),),
        duckdb_path=data / "ga_ltv.duckdb",
        spool_dir=tmp_path / "spool",  # its own folder, as GA_LTV_SPOOL_DIR allows
        start_month=MONTHS[0],
    )
    with EmulatorServer([prop]) as server, DagsterInstance.ephemeral() as instance:
        settings = Settings(**{**settings.__dict__, "emulator": server.address})
        backfill(settings, months=MONTHS, instance=instance)
    written = {p.name for p in data.iterdir()}
    assert {"ga_ltv.duckdb", "ga_ltv.duckdb.lock", "extracts", "reports"} <= written
    assert list((data / "extracts").rglob("*.csv")) and list((data / "reports").rglob("*.html"))
    assert private_modes(data) == {}
    assert private_modes(settings.spool) == {}
