"""The Dagster definitions load as `dagster dev` would load them, with every piece present."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from pipelines.definitions import LTV_JOB, RAW_JOB, REFRESH_JOB, build_definitions
from pipelines.settings import load_settings


def test_definitions_load_from_the_module() -> None:
    from pipelines import definitions

    Definitions.validate_loadable(definitions.defs)


def test_assets_jobs_and_schedule() -> None:
    defs = build_definitions(load_settings({"GA_LTV_PROPERTIES": "123,456"}))
    keys = {key for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert AssetKey(["raw", "ga_acquisition"]) in keys
    assert AssetKey(["raw", "ga_cohort_activity"]) in keys
    for table in ("ltv_monthly", "ltv_by_channel", "ltv_by_source", "ltv_by_medium"):
        assert AssetKey(["marts", table]) in keys
    for job in (RAW_JOB, LTV_JOB, REFRESH_JOB):
        assert defs.resolve_job_def(job) is not None
    schedule = defs.resolve_schedule_def("monthly_refresh")
    assert schedule.cron_schedule == "0 * * * *"
    partitions = defs.resolve_assets_def(AssetKey(["raw", "ga_acquisition"])).partitions_def
    assert {k.keys_by_dimension["property"] for k in partitions.get_partition_keys()} == {
        "123",
        "456",
    }
