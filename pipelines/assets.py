"""Dagster assets: raw GA4 reports per property-month, and the LTV marts built from them."""

from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
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
    multi_asset,
)

from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition
from pipelines.landing import LandingResult, MonthWindow, land_month
from pipelines.partitions import MONTH_DIMENSION, PROPERTY_DIMENSION, next_partition
from pipelines.resources import Ga4Resource, WarehouseResource
from warehouse.checks import PartitionFacts, ltv_decreases
from warehouse.models import LTV_TABLES, build_ltv_tables

RAW_REPORTS = (ACQUISITION, COHORT_ACTIVITY)
LTV_MONTHLY_KEY = AssetKey(["marts", "ltv_monthly"])
LTV_STEP = "ltv_tables"  # the step that rebuilds every mart


def raw_asset_key(report: ReportDefinition) -> AssetKey:
    return AssetKey(report.raw_table.split("."))


def _landing_metadata(result: LandingResult) -> dict[str, object]:
    flags = result.flags
    metadata: dict[str, object] = {
        "window_start": result.window.start.isoformat(),
        "window_end": result.window.end.isoformat(),
        "pages": result.pages,
        "rows_per_page": MetadataValue.json(list(result.rows_per_page)),
        "rows_reported": result.rows_reported,
        "dagster/row_count": result.rows_landed,
        "is_final": result.is_final,
        "quota_tokens_used": result.quota_tokens_used,
        "pages_fetched_ahead": result.pages_fetched_ahead,
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


# Each report is reconciled on one metric against a totals-only request for the same window.
RECONCILED_METRIC = {ACQUISITION.name: "newUsers", COHORT_ACTIVITY.name: "totalRevenue"}
# Revenue is compared to the cent; counts exactly.
RECONCILE_TOLERANCE = 0.005


def _landing_checks(
    result: LandingResult,
    facts: PartitionFacts,
    metric: str,
    ga_total: float,
    *,
    asset_key: AssetKey | None = None,
) -> list[AssetCheckResult]:
    flags = result.flags
    quality_issues = [
        name
        for name, flagged in (
            ("an (other) row", flags and flags.data_loss_from_other_row),
            ("thresholded data", flags and flags.subject_to_thresholding),
        )
        if flagged
    ]
    landed_total = facts.metric_sums[metric]
    return [
        AssetCheckResult(
            asset_key=asset_key,
            check_name="rows_match_ga",
            passed=result.rows_landed == result.rows_reported == facts.rows,
            metadata={
                "rows_reported": result.rows_reported,
                "rows_landed": result.rows_landed,
                "rows_in_table": facts.rows,
            },
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="reconciles_with_ga_totals",
            passed=abs(landed_total - ga_total) <= RECONCILE_TOLERANCE,
            metadata={"metric": metric, "landed": landed_total, "ga_total": ga_total},
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="no_duplicate_keys",
            passed=facts.duplicate_keys == 0,
            metadata={"duplicate_keys": facts.duplicate_keys},
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="no_placeholder_values",
            passed=facts.placeholder_rows == 0,
            # Before the month is final GA may still show placeholders; the refresh reloads it.
            severity=AssetCheckSeverity.ERROR if result.is_final else AssetCheckSeverity.WARN,
            metadata={"placeholder_rows": facts.placeholder_rows, "is_final": result.is_final},
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="no_data_quality_flags",
            passed=not quality_issues,
            severity=AssetCheckSeverity.WARN,
            description="GA reported " + " and ".join(quality_issues) if quality_issues else None,
        ),
    ]


RAW_CHECKS = {
    "rows_match_ga": "Rows landed = rows in the table = GA's rowCount",
    "reconciles_with_ga_totals": "The landed month adds up to a totals-only GA request",
    "no_duplicate_keys": "No two rows share their dimension values",
    "no_placeholder_values": "No '(data not available)' once the month is final",
    "no_data_quality_flags": "No (other) row and no thresholding in GA's response",
}


def raw_reports_asset(
    reports: Sequence[ReportDefinition], partitions: MultiPartitionsDefinition
) -> AssetsDefinition:
    """One raw table per report, landed together: each partition replaces its own rows of
    every report in one transaction, so a month's reports never disagree. Selecting one
    report (``--select raw/ga_acquisition``) lands that report alone."""

    @multi_asset(
        name="raw_reports",
        partitions_def=partitions,
        specs=[
            AssetSpec(
                raw_asset_key(report),
                group_name="raw",
                kinds={"duckdb"},
                description=(
                    f"GA4 runReport `{report.name}` as landed: dimensions "
                    f"{', '.join(report.dimensions)}; metrics {', '.join(report.metrics)}."
                ),
            )
            for report in reports
        ],
        check_specs=[
            AssetCheckSpec(name, asset=raw_asset_key(report), description=description)
            for report in reports
            for name, description in RAW_CHECKS.items()
        ],
        can_subset=True,
    )
    def _raw(context: AssetExecutionContext, ga4: Ga4Resource, warehouse: WarehouseResource):
        keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
        property_id, month_key = keys[PROPERTY_DIMENSION], keys[MONTH_DIMENSION]
        selected = [r for r in reports if raw_asset_key(r) in context.selected_asset_keys]
        connector = ga4.reports(property_id)
        currency = ga4.currencies.get(property_id)
        window = MonthWindow.of(month_key)
        # Asked before landing: a quota stop here or in the landing leaves the partition as
        # it was, rather than written but unchecked.
        ga_totals = {
            report.name: connector.totals(
                [metric], start=window.start, end=window.end, currency_code=currency
            )[metric]
            for report in selected
            for metric in [RECONCILED_METRIC[report.name]]
        }
        # After a first answer, so that the quota left is known before spending ahead.
        _ask_ahead(context, ga4, selected)
        results = land_month(
            reports=connector,
            report_definitions=selected,
            month_key=month_key,
            db_path=warehouse.path,
            spool_dir=warehouse.spool,
            log=context.log,
            currency_code=currency,
            now=ga4.now(),
        )
        for report, result in zip(selected, results, strict=True):
            metric, ga_total = RECONCILED_METRIC[report.name], ga_totals[report.name]
            context.log.info(
                "property %s report %s: %s landed %.2f, GA total %.2f",
                property_id, report.name, metric, result.facts.metric_sums[metric], ga_total,
            )  # fmt: skip
            checks = _landing_checks(
                result, result.facts, metric, ga_total, asset_key=raw_asset_key(report)
            )
            yield MaterializeResult(
                asset_key=raw_asset_key(report),
                metadata=_landing_metadata(result),
                check_results=[
                    check
                    for check in checks
                    if AssetCheckKey(raw_asset_key(report), check.check_name)
                    in context.selected_asset_check_keys
                ],
            )

    return _raw


def _ask_ahead(
    context: AssetExecutionContext, ga4: Ga4Resource, reports: Sequence[ReportDefinition]
) -> None:
    """Send the requests of the partition a backfill lands next, to overlap GA's time with
    this partition's work; the next run takes the answers up."""
    ahead = next_partition(context.run.tags)
    if ahead is None:
        return
    property_id, month = ahead
    window = MonthWindow.of(month)
    try:
        connector = ga4.reports(property_id)
        asked = [
            connector.prefetch(
                report,
                start=window.start,
                end=window.end,
                currency_code=ga4.currencies.get(property_id),
                totals=[RECONCILED_METRIC[report.name]],
            )
            for report in reports
        ]
    except Exception as exc:  # only a head start: the next run meets a real error itself
        context.log.warning("could not ask ahead for property %s month %s: %s",
                            property_id, month, exc)  # fmt: skip
        return
    if any(asked):
        context.log.info(
            "property %s window %s..%s: asking GA ahead for the next partition",
            property_id, window.start, window.end,
        )  # fmt: skip
    else:
        context.log.info(
            "property %s window %s..%s: not asking ahead, the quota left is unknown or near "
            "its reserve", property_id, window.start, window.end,
        )  # fmt: skip


def ltv_assets(raw_keys: list[AssetKey]) -> AssetsDefinition:
    """The LTV marts, rebuilt together from every loaded partition."""

    @multi_asset(
        check_specs=[
            AssetCheckSpec(
                "cumulative_never_decreases",
                asset=LTV_MONTHLY_KEY,
                description="Per-user cumulative values never fall with age (revenue: refunds)",
            )
        ],
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
        name=LTV_STEP,
    )
    def _ltv(context: AssetExecutionContext, warehouse: WarehouseResource):
        counts = build_ltv_tables(warehouse.path)
        for table in LTV_TABLES:
            context.log.info("built marts.%s: %d rows", table, counts[table])
            yield MaterializeResult(
                asset_key=AssetKey(["marts", table]),
                metadata={"dagster/row_count": counts[table]},
            )
        decreases = ltv_decreases(warehouse.path)
        yield AssetCheckResult(
            asset_key=LTV_MONTHLY_KEY,
            check_name="cumulative_never_decreases",
            # Falling revenue is possible through refunds: worth a look, not a failure.
            passed=decreases["activity"] == 0 and decreases["revenue"] == 0,
            severity=(
                AssetCheckSeverity.ERROR if decreases["activity"] else AssetCheckSeverity.WARN
            ),
            metadata={
                "rows_where_activity_fell": decreases["activity"],
                "rows_where_revenue_fell": decreases["revenue"],
            },
        )

    return _ltv
