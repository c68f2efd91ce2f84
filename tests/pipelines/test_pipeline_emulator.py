"""The Dagster jobs against the emulator: a backfill lands every month, a re-run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import grpc
import pytest
from dagster import AssetKey, DagsterInstance

from connectors.emulator.errors import EmulatorError
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from connectors.reports import COHORT_ACTIVITY
from pipelines.definitions import RAW_JOB
from pipelines.runner import BackfillError, backfill
from pipelines.settings import PropertySettings, Settings
from tests.connectors.support import CountingEmulator
from tests.pipelines.support import emulator_settings

PROPERTY_ID = "515151"
MONTHS = ["2024-01", "2024-02", "2024-03"]
MART_COLUMNS = (
    "property_id, cohort_month, channel, months_since_acquisition, acquired_users, revenue, "
    "cumulative_revenue, ltv, transactions_per_user, sessions_per_user"
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=3, months=4, users=3_000, end=date(2024, 3, 31)
    )
    with EmulatorServer([prop]) as server:
        yield server.address


def _settings(address: str, tmp_path: Path) -> Settings:
    return emulator_settings(address, tmp_path, [PROPERTY_ID], MONTHS[0])


def _mart(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            f"select {MART_COLUMNS} from marts.ltv_by_channel order by all"  # noqa: S608 - constant
        ).fetchall()


def test_backfill_then_rerun_is_unchanged(emulator: str, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=MONTHS, instance=instance)
        first = _mart(settings.duckdb_path)
        again = backfill(settings, months=MONTHS[1:2], instance=instance, force=True)
        second = _mart(settings.duckdb_path)
        resumed = backfill(settings, months=MONTHS, instance=instance)
    assert again.landed == [(PROPERTY_ID, "2024-02")]
    assert first == second
    # Months loaded after they were final are not fetched again without --force.
    assert resumed.landed == [] and len(resumed.skipped) == 3
    # Every cohort has a row for each age up to the last loaded month.
    ages = {(row[1], row[2]): row[3] for row in first}
    assert {month for (month, _) in ages} == {date(2024, m, 1) for m in (1, 2, 3)}
    for (cohort, _), _age in ages.items():
        assert max(r[3] for r in first if r[1] == cohort) == 3 - cohort.month
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        loads = con.execute(
            "select report, count(*), bool_and(rows_landed = rows_reported) "
            "from raw.ga_loads group by report order by report"
        ).fetchall()
    assert loads == [("acquisition", 3, True), ("cohort_activity", 3, True)]
    # No spool files are left behind once a partition has landed.
    assert not any(p.is_file() for p in settings.spool.rglob("*"))


def test_future_month_is_refused(emulator: str, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    future = date.today().replace(day=1).replace(year=date.today().year + 1).strftime("%Y-%m")
    with DagsterInstance.ephemeral() as instance, pytest.raises(BackfillError, match=future):
        backfill(settings, months=[future], instance=instance)
    assert not settings.duckdb_path.exists()


def test_unknown_property_fails_with_access_message(emulator: str, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    settings = Settings(**{**settings.__dict__, "properties": (PropertySettings("999"),)})
    with (
        DagsterInstance.ephemeral() as instance,
        pytest.raises(BackfillError, match="does not serve property 999"),
    ):
        backfill(settings, months=MONTHS[:1], instance=instance)


def test_materialization_metadata_and_checks(emulator: str, tmp_path: Path) -> None:
    """What the UI shows for a landed partition, and the checks that ran on it."""
    from dagster import AssetKey

    from pipelines.definitions import RAW_JOB, build_definitions
    from pipelines.partitions import partition_key

    settings = _settings(emulator, tmp_path)
    job = build_definitions(settings).resolve_job_def(RAW_JOB)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            partition_key=partition_key(PROPERTY_ID, "2024-02"), instance=instance
        )
    materializations = {
        m.asset_key: m.metadata for m in result.asset_materializations_for_node("raw_reports")
    }
    metadata = materializations[AssetKey(["raw", "ga_cohort_activity"])]
    assert metadata["window_start"].value == "2024-02-01"
    assert metadata["window_end"].value == "2024-02-29"
    assert metadata["pages"].value == len(metadata["rows_per_page"].value) >= 1
    assert sum(metadata["rows_per_page"].value) == metadata["dagster/row_count"].value > 0
    assert metadata["rows_reported"].value == metadata["dagster/row_count"].value
    assert metadata["time_zone"].value == "America/New_York"
    assert metadata["currency_code"].value == "USD"
    assert metadata["data_loss_from_other_row"].value is False
    assert metadata["quota_tokens_used"].value > 0
    assert "quota_tokens_remaining_daily" in metadata
    assert "| date |" in metadata["preview"].value
    checks = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert len(checks) == 10
    assert all(checks.values()), checks


def test_spools_abandoned_by_dead_runs_are_removed(emulator: str, tmp_path: Path) -> None:
    """A killed run leaves its pages behind; the next load clears them, even those of another
    partition (one that landed whole later is never fetched again)."""
    import os
    import time

    settings = _settings(emulator, tmp_path)
    partition = settings.spool / PROPERTY_ID / "acquisition" / MONTHS[0]
    other = settings.spool / PROPERTY_ID / "cohort_activity" / "2023-07" / "dead-run"
    old, recent = partition / "dead-run", partition / "live-run"
    for folder in (old, recent, other):
        folder.mkdir(parents=True)
        (folder / "page-00001.parquet").write_bytes(b"x")
    day_ago = time.time() - 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=MONTHS[:1], instance=instance)
    assert not old.exists() and not other.exists()
    assert recent.exists(), "a folder written recently may belong to a live run"


def test_each_run_asks_ga_ahead_for_the_next_partition(tmp_path: Path) -> None:
    """A backfill's run for one month sends the next month's requests, and that run takes the
    answers up: GA is asked exactly what it would be asked otherwise, four requests a month."""
    prop = generate_property(
        property_id=PROPERTY_ID, seed=3, months=4, users=3_000, end=date(2024, 3, 31)
    )
    with CountingEmulator([prop]) as server:
        settings = _settings(server.address, tmp_path)
        with DagsterInstance.ephemeral() as instance:
            backfill(settings, months=MONTHS, instance=instance)
            ahead = {
                (key.path[-1], record.partition_key): record.asset_materialization.metadata[
                    "pages_fetched_ahead"
                ].value
                for key in (
                    AssetKey(["raw", "ga_acquisition"]),
                    AssetKey(["raw", "ga_cohort_activity"]),
                )
                for record in instance.fetch_materializations(key, limit=10).records
            }
        # Two reports a month, each a page and a totals request: nothing asked twice.
        assert sorted(server.requests) == sorted(
            f"{month}-01" for month in MONTHS for _ in range(4)
        )
    first, *later = [f"{month}|{PROPERTY_ID}" for month in MONTHS]
    for table in ("ga_acquisition", "ga_cohort_activity"):
        assert ahead[(table, first)] == 0
        assert [ahead[(table, key)] for key in later] == [1, 1]


class _CohortRefusingEmulator(EmulatorServer):
    """Answers everything but February's cohort_activity pages, which it refuses for good."""

    def _run_report(self, request: Any) -> bytes:
        cohort = len(request.dimensions) == len(COHORT_ACTIVITY.dimensions)
        if cohort and request.date_ranges[0].start_date == "2024-02-01":
            raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, "refused by the test")
        return super()._run_report(request)


def test_a_months_reports_land_together_or_not_at_all(tmp_path: Path) -> None:
    """February's acquisition is fetched first and fine; its cohort_activity then fails. Nothing
    of February may land, or its LTV would count users whose activity is missing."""
    prop = generate_property(
        property_id=PROPERTY_ID, seed=3, months=4, users=3_000, end=date(2024, 3, 31)
    )
    with _CohortRefusingEmulator([prop]) as server:
        settings = _settings(server.address, tmp_path)
        with DagsterInstance.ephemeral() as instance, pytest.raises(BackfillError):
            backfill(settings, months=MONTHS[:2], instance=instance)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        landed = con.execute(
            "select report, strftime(partition_month, '%Y-%m') from raw.ga_loads "
            "union all "
            "select distinct 'acquisition rows', strftime(partition_month, '%Y-%m') "
            "  from raw.ga_acquisition order by all"
        ).fetchall()
    assert landed == [
        ("acquisition", "2024-01"),
        ("acquisition rows", "2024-01"),
        ("cohort_activity", "2024-01"),
    ]


def test_selecting_one_raw_report_lands_that_report_alone(emulator: str, tmp_path: Path) -> None:
    """`dagster asset materialize --select raw/ga_acquisition` reloads one report; the other
    keeps what it had, and only the selected report's checks run."""
    from dagster import MultiPartitionKey, materialize

    from pipelines.definitions import build_definitions
    from pipelines.partitions import MONTH_DIMENSION, PROPERTY_DIMENSION
    from pipelines.resources import resources_from

    settings = _settings(emulator, tmp_path)
    defs = build_definitions(settings)
    partition = MultiPartitionKey({PROPERTY_DIMENSION: PROPERTY_ID, MONTH_DIMENSION: MONTHS[0]})
    acquisition = AssetKey(["raw", "ga_acquisition"])
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=MONTHS[:1], instance=instance)
        before = _load_ids(settings.duckdb_path)
        result = materialize(
            list(defs.assets or []),
            selection=[acquisition],
            partition_key=partition,
            resources=resources_from(settings),
            instance=instance,
        )
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {acquisition}
    checked = {e.asset_check_key.asset_key for e in result.get_asset_check_evaluations()}
    assert checked == {acquisition}
    assert all(e.passed for e in result.get_asset_check_evaluations())
    after = _load_ids(settings.duckdb_path)
    assert after["acquisition"] != before["acquisition"], "acquisition was landed again"
    assert after["cohort_activity"] == before["cohort_activity"], "cohort_activity kept"


def _load_ids(db_path: Path) -> dict[str, str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return dict(con.execute("select report, load_id from raw.ga_loads").fetchall())


def test_a_reload_logs_each_write_once_with_what_it_replaced(
    emulator: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(emulator, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        backfill(settings, months=MONTHS[:1], instance=instance)
        first_rows = _rows_per_report(settings.duckdb_path)
        caplog.clear()
        backfill(settings, months=MONTHS[:1], instance=instance, force=True)
        reload_run = next(r for r in instance.get_runs() if r.job_name == RAW_JOB)  # newest
        messages = [e.user_message for e in instance.all_logs(reload_run.run_id)]
    for report, rows in first_rows.items():
        wrote = [m for m in messages if f"report {report} month {MONTHS[0]}: wrote" in m]
        assert wrote == [
            f"property {PROPERTY_ID} report {report} month {MONTHS[0]}: wrote {rows} rows to "
            f"raw.ga_{report} (replacing {rows})"
        ]
    assert not [r for r in caplog.records if r.name == "warehouse.loads" and r.levelno >= 20]


def _rows_per_report(db_path: Path) -> dict[str, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return dict(con.execute("select report, rows_landed from raw.ga_loads").fetchall())
