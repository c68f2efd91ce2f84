"""Many properties, many months, several runs at once: no lock error, nothing lost or doubled.

Runs go through real Dagster machinery: a persistent instance in a temp folder, each partition
a run in its own worker process, all writing the same DuckDB file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from connectors.auth import build_client
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from connectors.ga4_client import Ga4Reports
from pipelines.errors import BackfillError
from pipelines.runner import backfill
from pipelines.settings import PropertySettings, Settings
from tests.pipelines.support import cli_env, cli_run_command, emulator_settings, loads_landed, marts
from warehouse.summary import channel_summary

MONTHS = [f"2023-{m:02d}" for m in range(1, 13)]
PROPERTIES = {"700001": ("America/New_York", "USD"), "700002": ("Asia/Tokyo", "JPY")}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    props = [
        generate_property(
            property_id=pid,
            seed=int(pid),
            months=12,
            users=2_500,
            end=date(2023, 12, 31),
            time_zone=tz,
            currency_code=currency,
        )
        for pid, (tz, currency) in PROPERTIES.items()
    ]
    with EmulatorServer(props) as server:
        yield server.address


def _settings(address: str, folder: Path) -> Settings:
    return emulator_settings(address, folder, PROPERTIES, MONTHS[0])


def test_two_properties_twelve_months_four_at_once(emulator: str, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as instance:
        report = backfill(settings, months=MONTHS, instance=instance, parallel=4)
        runs = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
    assert not report.failed
    assert len(report.landed) == 24
    assert len(runs) == 24 + 1  # one run per partition, then the LTV rebuild
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        loads = con.execute(
            "select property_id, count(*), count(distinct partition_month), "
            "any_value(time_zone), any_value(currency_code) "
            "from raw.ga_loads group by 1 order by 1"
        ).fetchall()
        currencies = con.execute(
            "select property_id, currency_code from marts.ltv_by_channel group by all order by 1"
        ).fetchall()
    assert loads == [
        ("700001", 24, 12, "America/New_York", "USD"),
        ("700002", 24, 12, "Asia/Tokyo", "JPY"),
    ]
    assert currencies == [("700001", "USD"), ("700002", "JPY")]


def test_killed_backfill_resumes_to_the_same_tables(emulator: str, tmp_path: Path) -> None:
    """SIGKILL the CLI mid-backfill; the rerun skips finished months and ends identical."""
    reference = _settings(emulator, tmp_path / "reference")
    with DagsterInstance.ephemeral() as instance:
        backfill(reference, months=MONTHS, instance=instance)

    interrupted = _settings(emulator, tmp_path / "interrupted")
    env = cli_env(emulator, PROPERTIES, tmp_path / "interrupted", MONTHS[0])
    command = cli_run_command(MONTHS[0], MONTHS[-1])
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and loads_landed(interrupted.duckdb_path) < 6:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    landed_before = loads_landed(interrupted.duckdb_path)
    assert 6 <= landed_before < 48, "the kill must land halfway through the backfill"

    with DagsterInstance.ephemeral() as instance:
        resumed = backfill(interrupted, months=MONTHS, instance=instance)
    assert len(resumed.skipped) >= landed_before // 2 - 1
    assert len(resumed.skipped) + len(resumed.landed) == 24
    assert marts(interrupted.duckdb_path) == marts(reference.duckdb_path)


def test_one_reporting_currency_and_per_property_start(emulator: str, tmp_path: Path) -> None:
    """Properties in USD and JPY read in USD; a property's start month bounds its backfill."""
    settings = replace(
        _settings(emulator, tmp_path),
        properties=(
            PropertySettings("700001", currency="USD"),
            PropertySettings("700002", currency="USD", start_month="2023-11"),
        ),
    )
    with DagsterInstance.ephemeral() as instance:
        report = backfill(settings, months=MONTHS[-3:], instance=instance)
    assert report.before_start == [("700002", "2023-10")]
    assert len(report.landed) == 5
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        currencies = con.execute(
            "select property_id, currency_code, min(cohort_month) from marts.ltv_by_channel "
            "group by all order by 1"
        ).fetchall()
        jpy_revenue = con.execute(
            "select sum(total_revenue) from raw.ga_cohort_activity where property_id = '700002'"
        ).fetchone()[0]
    assert currencies == [
        ("700001", "USD", date(2023, 10, 1)),
        ("700002", "USD", date(2023, 11, 1)),
    ]
    # GA converted: the same months read in the property's own yen are far larger numbers.
    client, _ = build_client(endpoint=emulator)
    in_yen = Ga4Reports(client, "700002").totals(
        ["totalRevenue"], start=date(2023, 11, 1), end=date(2023, 12, 31)
    )["totalRevenue"]
    assert 0 < jpy_revenue * 50 < in_yen


def test_changing_a_property_currency_is_refused_until_reloaded(
    emulator: str, tmp_path: Path
) -> None:
    """Months in JPY and months in USD must never add up into one LTV."""
    in_yen = _settings(emulator, tmp_path)
    in_dollars = replace(
        in_yen, properties=(PropertySettings("700001"), PropertySettings("700002", currency="USD"))
    )
    with DagsterInstance.ephemeral() as instance:
        backfill(in_yen, months=MONTHS[-2:], instance=instance)
        with pytest.raises(
            BackfillError, match=r"700002 is set to report in USD.*2023-11, 2023-12"
        ):
            backfill(in_dollars, months=MONTHS[-3:], instance=instance)
        with pytest.raises(BackfillError, match="--force --start 2023-11 --end 2023-12"):
            backfill(in_dollars, months=MONTHS[-1:], instance=instance, force=True)
        backfill(in_dollars, months=MONTHS[-2:], instance=instance, force=True)
    with duckdb.connect(str(in_yen.duckdb_path), read_only=True) as con:
        assert con.execute(
            "select property_id, string_agg(distinct currency_code) from raw.ga_loads "
            "group by 1 order by 1"
        ).fetchall() == [("700001", "USD"), ("700002", "USD")]


def test_command_line_summary_keeps_properties_apart(emulator: str, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=MONTHS[-2:], instance=instance)
    summaries = channel_summary(settings.duckdb_path)
    assert [(s.property_id, s.currency_code) for s in summaries] == [
        ("700001", "USD"),
        ("700002", "JPY"),
    ]
    assert all(s.channels for s in summaries)


@pytest.mark.parametrize("parallel", [1, 2], ids=["sequential", "parallel"])
def test_ctrl_c_stops_the_whole_backfill_and_leaves_no_run_unfinished(
    emulator: str, tmp_path: Path, parallel: int
) -> None:
    """Ctrl-C mid-backfill (SIGINT to the whole process group, as a terminal sends it): the CLI
    stops (no further month, no LTV rebuild), says how to go on without a traceback from any
    process, and the persistent instance holds no run still marked as going."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    folder = tmp_path / "interrupted"
    env = cli_env(emulator, PROPERTIES, folder, MONTHS[0]) | {"DAGSTER_HOME": str(home)}
    command = cli_run_command(MONTHS[0], MONTHS[-1], "--parallel", str(parallel))
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and loads_landed(folder / "ga_ltv.duckdb") < 4:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr and "the same command resumes" in stderr
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr[-3000:]
    landed = loads_landed(folder / "ga_ltv.duckdb")
    assert 4 <= landed < 48
    with duckdb.connect(str(folder / "ga_ltv.duckdb"), read_only=True) as con:
        marts_built = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
    assert marts_built == 0, "an interrupted backfill must not go on to rebuild the marts"
    with DagsterInstance.from_config(str(home)) as instance:
        going = [DagsterRunStatus.STARTED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
        unfinished = instance.get_runs(filters=RunsFilter(statuses=going))
    assert not unfinished, [(r.job_name, r.status) for r in unfinished]
