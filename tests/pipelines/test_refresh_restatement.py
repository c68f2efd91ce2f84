"""A month loaded before it was final is reloaded by the schedule, and GA's placeholders go.

The emulator's clock and the pipeline's notion of "now" move together: on 1 April the last
days of March are still being processed (partial values, `(data not available)` acquisition
fields); by 5 April they have settled and the monthly refresh must land the final numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from pipelines.definitions import REFRESH_JOB, build_definitions
from pipelines.runner import backfill
from pipelines.schedules import refresh_requests
from pipelines.settings import Settings
from tests.pipelines.support import emulator_settings

PROPERTY_ID = "616161"
EARLY = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
SETTLED = datetime(2024, 4, 5, 7, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves; the emulator reads it on every request."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(EARLY)


@pytest.fixture
def emulator(clock: Clock) -> Iterator[str]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=5, months=3, users=3_000, end=date(2024, 4, 4),
        time_zone="UTC",
    )  # fmt: skip
    with EmulatorServer([prop], options=EmulatorOptions(clock=clock)) as server:
        yield server.address


def _settings(address: str, folder: Path, now: datetime) -> Settings:
    return emulator_settings(address, folder, [PROPERTY_ID], "2024-02", as_of=now.isoformat())


def _state(db: Path) -> tuple[int, bool, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        placeholders = con.execute(
            "select count(*) from raw.ga_acquisition where partition_month = '2024-03-01' "
            "and first_user_source = '(data not available)'"
        ).fetchone()[0]
        final = con.execute(
            "select bool_and(is_final) from raw.ga_loads where partition_month = '2024-03-01'"
        ).fetchone()[0]
        sessions = con.execute(
            "select sum(sessions) from raw.ga_cohort_activity where partition_month = '2024-03-01'"
        ).fetchone()[0]
    return placeholders, final, sessions


def _marts(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select * from marts.ltv_monthly order by all").fetchall()


def test_schedule_reloads_the_month_loaded_too_early(
    emulator: str, clock: Clock, tmp_path: Path
) -> None:
    early = _settings(emulator, tmp_path / "pipeline", EARLY)
    with DagsterInstance.ephemeral() as instance:
        backfill(early, months=["2024-03"], instance=instance)
    placeholders, final, early_sessions = _state(early.duckdb_path)
    assert placeholders > 0 and final is False

    clock.now = SETTLED
    settled = replace(early, as_of=SETTLED.isoformat())
    requests = refresh_requests(settled, SETTLED)
    assert [r.partition_key for r in requests] == [f"2024-03|{PROPERTY_ID}"]
    job = build_definitions(settled).resolve_job_def(REFRESH_JOB)
    with DagsterInstance.ephemeral() as instance:
        for request in requests:
            result = job.execute_in_process(
                partition_key=request.partition_key, instance=instance, tags=request.tags
            )
            assert result.success
    placeholders, final, settled_sessions = _state(settled.duckdb_path)
    assert placeholders == 0 and final is True
    assert settled_sessions > early_sessions  # the last days filled in

    # The reloaded month equals a month loaded only after it settled.
    reference = _settings(emulator, tmp_path / "reference", SETTLED)
    with DagsterInstance.ephemeral() as instance:
        backfill(reference, months=["2024-03"], instance=instance)
    assert _marts(settled.duckdb_path) == _marts(reference.duckdb_path)
    # Nothing is due any more for March.
    assert all(
        r.partition_key != f"2024-03|{PROPERTY_ID}" for r in refresh_requests(settled, SETTLED)
    )
