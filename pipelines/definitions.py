"""Dagster definitions, assembled in one place; `dagster dev` loads them from the project root."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from pipelines.assets import RAW_REPORTS, ltv_assets, raw_asset_key, raw_reports_asset
from pipelines.logs import compact_console_logger
from pipelines.partitions import property_month_partitions
from pipelines.publishing import PUBLISHING_ASSETS
from pipelines.resources import resources_from
from pipelines.schedules import monthly_refresh_schedule
from pipelines.settings import Settings, load_settings

RAW_JOB = "raw_reports_job"
LTV_JOB = "ltv_job"
REFRESH_JOB = "monthly_refresh_job"


def build_definitions(settings: Settings) -> Definitions:
    partitions = property_month_partitions(settings)
    raw_assets = [raw_reports_asset(RAW_REPORTS, partitions)]
    ltv = ltv_assets([raw_asset_key(report) for report in RAW_REPORTS])
    refresh_job = define_asset_job(
        REFRESH_JOB,
        selection=[*raw_assets, ltv, *PUBLISHING_ASSETS],
        description="Land one property-month of GA4 reports and rebuild the LTV marts.",
    )
    raw_job = define_asset_job(
        RAW_JOB, selection=raw_assets, description="Land one property-month of GA4 reports."
    )
    ltv_job = define_asset_job(
        LTV_JOB,
        selection=[ltv, *PUBLISHING_ASSETS],
        description="Rebuild the LTV marts from all loaded months, then publish them.",
    )
    return Definitions(
        assets=[*raw_assets, ltv, *PUBLISHING_ASSETS],
        jobs=[refresh_job, raw_job, ltv_job],
        schedules=[monthly_refresh_schedule(refresh_job, settings)],
        resources=resources_from(settings),
        loggers={"console": compact_console_logger},
    )


defs = build_definitions(load_settings())
