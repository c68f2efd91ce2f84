"""A backfill SIGKILLed during a page fetch, a DuckDB write or the LTV rebuild leaves the
warehouse as it was before or as it would be after, never in between, and the next run
completes it to exactly the tables of an uninterrupted run.

Kill points are made exact rather than hoped for: a fetch is killed while the emulator holds
its request open, a write or rebuild while the run holds the warehouse's writer lock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from connectors.emulator.generated import generate_property
from pipelines.assets import RAW_REPORTS
from pipelines.runner import backfill
from pipelines.settings import Settings
from tests.pipelines.support import cli_env, cli_run_command, emulator_settings, marts
from tests.reliability.conftest import Tally
from tests.reliability.support import (
    CliRun,
    GatedEmulator,
    check_marts,
    check_raw_invariants,
    raw_partitions,
    wait_for_writer,
    writer_active,
)
from warehouse.checks import finished_partitions, load_states

PROPERTY_ID = "810001"
MONTHS = [f"2023-{m:02d}" for m in range(1, 7)]
BASELINE = MONTHS[:3]  # landed and built before the interrupted runs, so marts exist
# The marts are what this is about; publishing would only slow each run down.
NO_PUBLISHING = {"GA_LTV_EXTRACTS_DIR": "off", "GA_LTV_REPORT_DIR": "off"}
LANDED_LINE = "totalRevenue landed"  # the last line of each partition's run


@dataclass(frozen=True)
class KillPoint:
    phase: str  # "fetch", "write" or "build"
    skip_pages: int = 0  # fetch: page requests let through before the one held open
    after: str = ""  # write: a pattern of the stderr line after which the next write is aimed at
    delay: float = 0.0  # seconds into the write before the kill


KILL_POINTS = [
    KillPoint("fetch"),  # the first month's first page: nothing new lands
    KillPoint("fetch", skip_pages=1),  # after one report of a month landed, not the other
    KillPoint("write", after=r"report cohort_activity\b.*\bpage 1\b"),
    KillPoint("write", after=r"report acquisition\b.*\bpage 1\b", delay=0.03),
    KillPoint("write", after=r"report cohort_activity\b.*\bpage 1\b", delay=0.05),
    KillPoint("build"),
    KillPoint("build", delay=0.01),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[GatedEmulator]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=11, months=6, users=6_000, end=date(2023, 6, 30)
    )
    with GatedEmulator([prop]) as server:
        yield server


def _settings(address: str, folder: Path) -> Settings:
    return emulator_settings(address, folder, [PROPERTY_ID], MONTHS[0])


def _remaining(db_path: Path) -> int:
    done = finished_partitions(load_states(db_path), RAW_REPORTS)
    return sum((PROPERTY_ID, month) not in done for month in MONTHS)


def _kill(run: CliRun, point: KillPoint, emulator: GatedEmulator, db: Path, left: int) -> bool:
    """Kill the run at ``point``; True when it was inside the intended phase at that moment."""
    if point.phase == "fetch":
        assert emulator.arrived.wait(60), "no page request arrived:\n" + run.stderr[-3000:]
        killed = run.kill()
        emulator.release.set()
        return killed
    if point.phase == "write":
        run.wait_for(lambda lines: any(re.search(point.after, ln) for ln in lines), timeout=60)
    else:
        # After its last partition the run's next write session is the LTV rebuild.
        run.wait_for(lambda lines: sum(LANDED_LINE in ln for ln in lines) >= left, timeout=60)
    wait_for_writer(run, db)
    time.sleep(point.delay)
    inside = writer_active(db)
    return run.kill() and inside


def test_sigkill_at_every_phase_then_resume(
    emulator: GatedEmulator, tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in NO_PUBLISHING.items():
        monkeypatch.setenv(name, value)
    reference = _settings(emulator.address, tmp_path / "reference")
    interrupted = _settings(emulator.address, tmp_path / "interrupted")
    with DagsterInstance.ephemeral() as instance:
        backfill(reference, months=MONTHS, instance=instance)
        backfill(interrupted, months=BASELINE, instance=instance)
    reference_raw = raw_partitions(reference.duckdb_path)
    db = interrupted.duckdb_path
    env = cli_env(emulator.address, [PROPERTY_ID], tmp_path / "interrupted", MONTHS[0])
    env |= NO_PUBLISHING
    command = cli_run_command(MONTHS[0], MONTHS[-1])

    outcomes = []
    for point in KILL_POINTS:
        before = marts(db)
        left = _remaining(db)
        if point.phase == "fetch":
            emulator.hold_page_request(skip=point.skip_pages)
        run = CliRun(command, env)
        inside = _kill(run, point, emulator, db, left)
        kind = f"SIGKILL during {point.phase}"
        tally.fault(kind)
        landed = check_raw_invariants(db, reference_raw)
        marts_state = check_marts(db, before, tmp_path / "scratch")
        tally.survived_fault(kind)
        outcomes.append((point, inside, landed, marts_state))

    # Every kill interrupted a live run, and nearly all of them inside the phase aimed at.
    assert sum(inside for _, inside, _, _ in outcomes) >= len(KILL_POINTS) - 2, outcomes
    for phase in ("fetch", "write", "build"):
        assert any(p.phase == phase and inside for p, inside, _, _ in outcomes), (phase, outcomes)
    # The rebuild that was killed left the previous marts in place.
    assert any(p.phase == "build" and state == "as before" for p, _, _, state in outcomes)

    final = CliRun(command, env)
    assert final.finish() == 0, final.stderr[-3000:]
    assert "Traceback" not in final.stderr
    assert check_raw_invariants(db, reference_raw) == len(MONTHS) * len(RAW_REPORTS)
    assert raw_partitions(db) == reference_raw
    assert marts(db) == marts(reference.duckdb_path)
