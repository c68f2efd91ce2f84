"""Dagster assets that hand the LTV marts to tools that cannot read DuckDB (Looker Studio).

Each runs after the marts are rebuilt. One that is not configured (no PostgreSQL settings, a
folder set to ``off``) or has nothing to publish yet still succeeds: it returns a
materialization whose metadata says ``skipped`` and why, so the run stays green and the reason
is visible in the UI next to the asset, instead of only in the logs.

The PostgreSQL driver and matplotlib are imported only by the asset that uses them: together
about 40 MB that every landing process would otherwise carry.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.resources import PublishingResource, WarehouseResource
from warehouse.extracts import NothingToExtract, write_extracts
from warehouse.models import LTV_TABLES

MART_KEYS = [AssetKey(["marts", table]) for table in LTV_TABLES]
GROUP = "publishing"


def _skipped(context: AssetExecutionContext, reason: str) -> MaterializeResult:
    context.log.info("%s skipped: %s", context.asset_key.to_user_string(), reason)
    return MaterializeResult(metadata={"skipped": True, "skip_reason": reason})


@asset(
    deps=MART_KEYS,
    group_name=GROUP,
    kinds={"postgres"},
    description=(
        "The LTV marts copied into a PostgreSQL schema for Looker Studio, replaced in one "
        "transaction; skipped unless GA_LTV_PG_DSN or GA_LTV_PG_HOST is set."
    ),
)
def publish_postgres(
    context: AssetExecutionContext, warehouse: WarehouseResource, publishing: PublishingResource
) -> MaterializeResult:
    from warehouse.publish_postgres import publish_to_postgres

    if not publishing.postgres_enabled:
        return _skipped(context, "a demo or export replay is never published to PostgreSQL")
    target = publishing.postgres()
    if target is None:
        return _skipped(context, "PostgreSQL not configured (GA_LTV_PG_DSN / GA_LTV_PG_HOST)")
    result = publish_to_postgres(warehouse.path, target)
    context.log.info(
        "published %d tables, %d rows to %s schema %s",
        len(result.rows),
        sum(result.rows.values()),
        result.target,
        result.schema,
    )
    return MaterializeResult(
        metadata={
            "skipped": False,
            "target": result.target,
            "schema": result.schema,
            "reader_role": result.reader_role or "(none)",
            "rows": MetadataValue.json(result.rows),
            "dagster/row_count": sum(result.rows.values()),
            "seconds": round(result.seconds, 2),
        }
    )


@asset(
    deps=MART_KEYS,
    group_name=GROUP,
    kinds={"csv", "parquet"},
    description=(
        "CSV and Parquet copies of the LTV marts in <extracts>/<YYYY-MM>/ and <extracts>/latest/ "
        "(for a Looker Studio file upload); the folder is GA_LTV_EXTRACTS_DIR, default beside "
        "the DuckDB file, 'off' to skip."
    ),
)
def ltv_extracts(
    context: AssetExecutionContext, warehouse: WarehouseResource, publishing: PublishingResource
) -> MaterializeResult:
    folder = publishing.extracts_path(warehouse.path)
    if folder is None:
        return _skipped(context, "GA_LTV_EXTRACTS_DIR is off")
    try:
        result = write_extracts(warehouse.path, folder)
    except NothingToExtract as exc:
        return _skipped(context, str(exc))
    context.log.info(
        "wrote extracts for %s: %d tables to %s", result.month, len(result.rows), result.folder
    )
    return MaterializeResult(
        metadata={
            "skipped": False,
            "month": result.month,
            "folder": MetadataValue.path(str(result.folder)),
            "latest": MetadataValue.path(str(result.latest)),
            "rows": MetadataValue.json(result.rows),
            "dagster/row_count": sum(result.rows.values()),
        }
    )


@asset(
    deps=MART_KEYS,
    group_name=GROUP,
    kinds={"html"},
    description=(
        "A self-contained HTML report (LTV curves by channel, cohort heat map, summary tables) "
        "and PNG charts in <reports>/<YYYY-MM>/; the folder is GA_LTV_REPORT_DIR, default beside "
        "the DuckDB file, 'off' to skip."
    ),
)
def ltv_report(
    context: AssetExecutionContext, warehouse: WarehouseResource, publishing: PublishingResource
) -> MaterializeResult:
    from warehouse.report_html import NothingToReport, build_report, png_markdown

    folder = publishing.report_path(warehouse.path)
    if folder is None:
        return _skipped(context, "GA_LTV_REPORT_DIR is off")
    try:
        result = build_report(warehouse.path, folder)
    except NothingToReport as exc:
        return _skipped(context, str(exc))
    context.log.info("wrote LTV report for %s: %s", result.month, result.html)
    metadata: dict[str, object] = {
        "skipped": False,
        "month": result.month,
        "report": MetadataValue.path(str(result.html)),
        "summary_rows": result.summary_rows,
    }
    for property_id, (curves, heatmap) in sorted(result.charts.items()):
        metadata[f"charts_{property_id}"] = MetadataValue.md(
            png_markdown(curves.read_bytes(), f"LTV curves, property {property_id}")
            + "\n\n"
            + png_markdown(heatmap.read_bytes(), f"cohort heat map, property {property_id}")
        )
    return MaterializeResult(metadata=metadata)


PUBLISHING_ASSETS = [publish_postgres, ltv_extracts, ltv_report]
