"""A backfill that runs out of daily quota stops cleanly, and the next day's run finishes it.

The emulator's clock decides the Pacific day its token ledger counts; moving it past
midnight Pacific is GA's daily reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from connectors.emulator.generated import generate_property
from connectors.emulator.quota import QuotaLimits
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from pipelines.runner import BackfillError, backfill
from pipelines.settings import Settings
from tests.connectors.support import MovingClock
from tests.pipelines.support import emulator_settings

PROPERTY = "818181"
MONTHS = [f"2024-{m:02d}" for m in range(1, 7)]
START = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)
# Each partition costs about 8 tokens (two reports: a totals request and one page each);
# the connector keeps 10 in reserve, so 30 a day lands a few months and stops.
TOKENS_PER_DAY = 30
RAW_TABLES = ("ga_acquisition", "ga_cohort_activity")


@pytest.fixture(scope="module")
def prop():
    return generate_property(
        property_id=PROPERTY, seed=3, months=7, users=1_500, end=date(2024, 7, 31)
    )


@pytest.fixture
def emulator(prop) -> Iterator[tuple[str, MovingClock]]:
    clock = MovingClock(START)
    options = EmulatorOptions(clock=clock, quota=QuotaLimits(tokens_per_day=TOKENS_PER_DAY))
    with EmulatorServer([prop], options=options) as server:
        yield server.address, clock


def _settings(address: str, folder: Path) -> Settings:
    return emulator_settings(address, folder, [PROPERTY], MONTHS[0])


def _partitions(db_path: Path) -> dict[tuple[str, str], list[tuple]]:
    """Each landed report partition's rows, without load ids and times."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        loaded = con.execute(
            "select report, strftime(partition_month, '%Y-%m') from raw.ga_loads"
        ).fetchall()
        result = {}
        for report, month in loaded:
            table = f"raw.ga_{report}"
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ? "
                    "and column_name not in ('load_id', 'loaded_at')",
                    [f"ga_{report}"],
                ).fetchall()
            ]
            result[(report, month)] = con.execute(
                f"select {', '.join(columns)} from {table} "  # noqa: S608 - catalog names
                "where strftime(partition_month, '%Y-%m') = ? order by all",
                [month],
            ).fetchall()
    return result


def _marts(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute("select * from marts.ltv_monthly order by all").fetchall()


def test_exhausted_daily_quota_stops_and_the_next_day_resumes(
    prop, emulator: tuple[str, MovingClock], tmp_path: Path
) -> None:
    reference = _settings_for_reference(prop, tmp_path / "reference")
    address, clock = emulator
    settings = _settings(address, tmp_path / "quota")
    with DagsterInstance.ephemeral() as instance, pytest.raises(BackfillError) as stopped:
        backfill(settings, months=MONTHS, instance=instance)
    message = str(stopped.value)
    assert "daily token quota" in message
    assert "midnight Pacific time" in message
    assert "Run the same command again" in message

    landed = _partitions(settings.duckdb_path)
    expected = _partitions(reference.duckdb_path)
    assert 0 < len(landed) < len(expected), "the quota must stop the backfill halfway"
    # Whatever landed is whole: no report partition was cut short by the quota.
    for key, rows in landed.items():
        assert rows == expected[key], key

    # The same command the next day (after midnight Pacific) finishes the backfill.
    clock.now = START + timedelta(days=1)
    with DagsterInstance.ephemeral() as instance:
        resumed = backfill(settings, months=MONTHS, instance=instance)
    assert resumed.skipped and resumed.landed
    assert len(resumed.skipped) + len(resumed.landed) == len(MONTHS)
    assert _partitions(settings.duckdb_path) == expected
    assert _marts(settings.duckdb_path) == _marts(reference.duckdb_path)


def _settings_for_reference(prop, folder: Path) -> Settings:
    """The same backfill with no quota limit, as the tables to match."""
    options = EmulatorOptions(clock=lambda: START)
    with EmulatorServer([prop], options=options) as server:
        settings = _settings(server.address, folder)
        with DagsterInstance.ephemeral() as instance:
            backfill(settings, months=MONTHS, instance=instance)
    return settings
