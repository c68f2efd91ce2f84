"""The publishing assets in Dagster: run by default, skipped cleanly, secrets kept out of runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, materialize

from pipelines.definitions import REFRESH_JOB, build_definitions
from pipelines.publishing import PUBLISHING_ASSETS
from pipelines.resources import PublishingResource, WarehouseResource
from pipelines.settings import load_settings
from tests.publishing.conftest import FAKE_PASSWORD, PgDatabase
from warehouse.models import LTV_TABLES

KEYS = [AssetKey(name) for name in ("publish_postgres", "ltv_extracts", "ltv_report")]
READER_PASSWORD = "Fake-Reader-Pass-Gecko-5521"


def _run(
    db: Path, tmp_path: Path, publishing: PublishingResource | None = None
) -> tuple[ExecuteInProcessResult, str]:
    """Materialize the publishing assets; the result and every event of the run as text."""
    instance = DagsterInstance.ephemeral()
    result = materialize(
        PUBLISHING_ASSETS,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(duckdb_path=str(db), spool_dir=str(tmp_path / "spool")),
            "publishing": publishing or PublishingResource(),
        },
        raise_on_error=False,
    )
    logs = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
    return result, logs


def _metadata(result: ExecuteInProcessResult, key: AssetKey) -> dict[str, object]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_defaults_write_extracts_and_report_and_skip_postgres(
    warehouse_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GA_LTV_EXTRACTS_DIR", str(tmp_path / "extracts"))
    result, _ = _run(warehouse_v1, tmp_path)
    assert result.success
    postgres = _metadata(result, KEYS[0])
    assert postgres["skipped"] is True and "not configured" in str(postgres["skip_reason"])
    extracts = _metadata(result, KEYS[1])
    assert extracts["skipped"] is False and extracts["month"] == "2024-03"
    assert (tmp_path / "extracts" / "latest" / "ltv_summary.csv").is_file()
    report = _metadata(result, KEYS[2])
    # No GA_LTV_REPORT_DIR: the report sits beside the DuckDB file.
    assert report["report"] == str(warehouse_v1.parent / "reports" / "2024-03" / "ltv_report.html")
    assert str(report["charts_123456789"]).startswith("![LTV curves, property 123456789](data:")


def test_folders_set_to_off_are_skipped(warehouse_v1: Path, tmp_path: Path) -> None:
    result, _ = _run(
        warehouse_v1, tmp_path, PublishingResource(extracts_dir="off", report_dir="OFF")
    )
    assert result.success
    for key in KEYS:
        assert _metadata(result, key)["skipped"] is True


def test_publish_asset_keeps_passwords_out_of_the_run(
    warehouse_v1: Path, tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in pg.env(
        GA_LTV_PG_READER_ROLE=pg.reader_role,
        GA_LTV_PG_READER_PASSWORD=READER_PASSWORD,
        GA_LTV_EXTRACTS_DIR="off",
        GA_LTV_REPORT_DIR="off",
    ).items():
        monkeypatch.setenv(name, value)
    result, logs = _run(warehouse_v1, tmp_path)
    assert result.success
    metadata = _metadata(result, KEYS[0])
    assert metadata["skipped"] is False
    assert metadata["rows"].keys() == set(LTV_TABLES)
    assert metadata["target"] == f"{pg.user}@{pg.host}:{pg.port}/{pg.dbname}"
    monkeypatch.setenv("GA_LTV_PG_PASSWORD", FAKE_PASSWORD + "-wrong")
    failed, failed_logs = _run(warehouse_v1, tmp_path)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert "could not connect" in error.to_string()
    for text in (logs, failed_logs, repr(metadata), error.to_string()):
        assert FAKE_PASSWORD not in text and READER_PASSWORD not in text


def test_refresh_job_runs_the_publishing_assets() -> None:
    defs = build_definitions(load_settings({"GA_LTV_PROPERTIES": "123"}))
    job = defs.resolve_job_def(REFRESH_JOB)
    assert set(KEYS) <= set(job.asset_layer.executable_asset_keys)
