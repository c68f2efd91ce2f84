"""A 24-month backfill against an emulator that fails about one call in ten (UNAVAILABLE, an
expired deadline, a connection dropped mid-pagination) completes, and its raw tables and marts
equal a fault-free run's row by row. The faults are the emulator's own (``FaultOptions``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from connectors.emulator.faults import FaultOptions
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from pipelines.runner import backfill
from pipelines.settings import PropertySettings, Settings
from tests.pipelines.support import marts
from tests.reliability.conftest import Tally
from tests.reliability.support import check_raw_invariants, raw_partitions

PROPERTY_ID = "860001"
MONTHS = [f"{year}-{month:02d}" for year in (2022, 2023) for month in range(1, 13)]
FAULTS = FaultOptions(seed=24, unavailable_rate=0.05, deadline_exceeded_rate=0.05, drop_page=9)


def _backfill(options: EmulatorOptions, folder: Path) -> dict[str, int]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=6, months=24, users=2_000, end=date(2023, 12, 31)
    )
    with EmulatorServer([prop], options=options) as server:
        settings = Settings(
            properties=(PropertySettings(PROPERTY_ID),),
            emulator=server.address,
            duckdb_path=folder / "ga_ltv.duckdb",
            spool_dir=folder / "spool",
            start_month=MONTHS[0],
        )
        with DagsterInstance.ephemeral() as instance:
            report = backfill(settings, months=MONTHS, instance=instance)
        injected = dict(server.faults.injected)
    assert not report.failed and len(report.landed) == len(MONTHS)
    return injected


def test_backfill_through_random_faults_equals_a_fault_free_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally: Tally
) -> None:
    monkeypatch.setenv("GA_LTV_EXTRACTS_DIR", "off")
    monkeypatch.setenv("GA_LTV_REPORT_DIR", "off")
    assert _backfill(EmulatorOptions(), tmp_path / "clean") == {}
    injected = _backfill(EmulatorOptions(faults=FAULTS), tmp_path / "faulty")
    for kind, count in injected.items():
        tally.fault(f"emulator {kind}", count=count)
    assert {"UNAVAILABLE", "DEADLINE_EXCEEDED", "DROPPED"} <= set(injected), injected

    clean, faulty = tmp_path / "clean" / "ga_ltv.duckdb", tmp_path / "faulty" / "ga_ltv.duckdb"
    reference = raw_partitions(clean)
    assert raw_partitions(faulty) == reference
    assert check_raw_invariants(faulty, reference) == len(MONTHS) * 2
    assert marts(faulty) == marts(clean)
    for kind, count in injected.items():
        tally.survived_fault(f"emulator {kind}", count=count)


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"unavailable_rate": 1.5}, "between 0 and 1"),
        ({"unavailable_rate": 0.7, "deadline_exceeded_rate": 0.7}, "add up to more than 1"),
        ({"deadline_exceeded_rate": 0.6, "concurrency_exhausted_rate": 0.5}, "more than 1"),
    ],
)
def test_fault_rates_that_cannot_all_happen_are_refused(
    rates: dict[str, float], message: str
) -> None:
    """One draw is split into bands: rates past 1 in all would silently shrink the later ones."""
    with pytest.raises(ValueError, match=message):
        FaultOptions(**rates)  # type: ignore[arg-type]
