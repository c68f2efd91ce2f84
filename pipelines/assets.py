"""Dagster assets: raw GA4 reports per property-month, and the LTV marts built from them."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    MultiPartitionsDefinition,
    asset,
    multi_asset,
)

from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition
from pipelines.landing import LandingResult, land_report
from pipelines.partitions import MONTH_DIMENSION, PROPERTY_DIMENSION
from pipelines.resources import Ga4Resource, WarehouseResource
from warehouse.models import LTV_TABLES, build_ltv_tables

RAW_REPORTS = (ACQUISITION, COHORT_ACTIVITY)


def raw_asset_key(report: ReportDefinition) -> AssetKey:
    return AssetKey(report.raw_table.split("."))


def _landing_metadata(result: LandingResult) -> dict[str, object]:
    flags = result.flags
    metadata: dict[str, object] = {
        "window_start": result.window.start.isoformat(),
        "window_end": result.window.end.isoformat(),
        "pages": result.pages,
        "rows_reported": result.rows_reported,
        "dagster/row_count": result.rows_landed,
        "is_final": result.is_final,
        "quota_tokens_used": result.quota_tokens_used,
    }
    if result.quota:
        metadata["quota_tokens_remaining_daily"] = result.quota.tokens_per_day_remaining
        metadata["quota_tokens_remaining_hourly"] = result.quota.tokens_per_hour_remaining
    if flags:
        metadata |= {
            "time_zone": flags.time_zone,
            "currency_code": flags.currency_code,
            "data_loss_from_other_row": flags.data_loss_from_other_row,
            "subject_to_thresholding": flags.subject_to_thresholding,
            "sampling": MetadataValue.json(list(flags.sampling)),
        }
    if result.preview is not None:
        metadata["preview"] = MetadataValue.md(_markdown_table(result.preview))
    return metadata


def _markdown_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "_no rows_"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = (str(row[c]).replace("|", "\\|").replace("\n", " ")[:80] for c in header)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _landing_checks(result: LandingResult) -> list[AssetCheckResult]:
    flags = result.flags
    quality_issues = [
        name
        for name, flagged in (
            ("an (other) row", flags and flags.data_loss_from_other_row),
            ("thresholded data", flags and flags.subject_to_thresholding),
        )
        if flagged
    ]
    return [
        AssetCheckResult(
            check_name="rows_match_ga",
            passed=result.rows_landed == result.rows_reported,
            metadata={"rows_reported": result.rows_reported, "rows_landed": result.rows_landed},
        ),
        AssetCheckResult(
            check_name="no_data_quality_flags",
            passed=not quality_issues,
            severity=AssetCheckSeverity.WARN,
            description="GA reported " + " and ".join(quality_issues) if quality_issues else None,
        ),
    ]


def raw_report_asset(
    report: ReportDefinition, partitions: MultiPartitionsDefinition
) -> AssetsDefinition:
    """One raw table per report; each partition replaces its own rows."""
    key = raw_asset_key(report)

    @asset(
        key=key,
        partitions_def=partitions,
        group_name="raw",
        kinds={"duckdb"},
        description=(
            f"GA4 runReport `{report.name}` as landed: dimensions "
            f"{', '.join(report.dimensions)}; metrics {', '.join(report.metrics)}."
        ),
        check_specs=[
            AssetCheckSpec("rows_match_ga", asset=key, description="Rows landed = GA rowCount"),
            AssetCheckSpec(
                "no_data_quality_flags",
                asset=key,
                description="No (other) row and no thresholding in GA's response",
            ),
        ],
    )
    def _raw(
        context: AssetExecutionContext, ga4: Ga4Resource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
        result = land_report(
            reports=ga4.reports(keys[PROPERTY_DIMENSION]),
            report=report,
            month_key=keys[MONTH_DIMENSION],
            db_path=warehouse.path,
            spool_dir=warehouse.spool,
            log=context.log,
        )
        return MaterializeResult(
            metadata=_landing_metadata(result), check_results=_landing_checks(result)
        )

    return _raw


def ltv_assets(raw_keys: list[AssetKey]) -> AssetsDefinition:
    """The LTV marts, rebuilt together from every loaded partition."""

    @multi_asset(
        specs=[
            AssetSpec(
                AssetKey(["marts", table]),
                deps=raw_keys,
                group_name="marts",
                kinds={"duckdb"},
                description=description,
            )
            for table, description in LTV_TABLES.items()
        ],
        name="ltv_tables",
    )
    def _ltv(context: AssetExecutionContext, warehouse: WarehouseResource):
        counts = build_ltv_tables(warehouse.path)
        for table in LTV_TABLES:
            context.log.info("built marts.%s: %d rows", table, counts[table])
            yield MaterializeResult(
                asset_key=AssetKey(["marts", table]),
                metadata={"dagster/row_count": counts[table]},
            )

    return _ltv
