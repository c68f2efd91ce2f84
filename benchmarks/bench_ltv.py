"""How fast the LTV tables rebuild from millions of raw rows (`warehouse.models.build_ltv_tables`).

Synthesises raw partitions shaped like a shop's GA4 property (30 first-user traffic sources,
every first-session date of the past three years active on every day of the month) with numpy,
lands them through the warehouse's own load path (`warehouse.loads.replace_partition`), then
times the rebuild of the staging and marts tables. Two warehouses side by side, one with a
fifth of the rows, show how the rebuild scales.

    .venv/bin/python benchmarks/bench_ltv.py [--rows N] [--months N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.emulator.generated import TRAFFIC
from connectors.reports import ACQUISITION, COHORT_ACTIVITY, ReportDefinition
from warehouse.loads import LoadRecord, replace_partition
from warehouse.models import build_ltv_tables

PROPERTY_ID = "300003"
LAST_MONTH = date(2025, 6, 1)
CHANNELS = [t.channel for t in TRAFFIC]
SOURCES = [t.source for t in TRAFFIC]
MEDIUMS = [t.medium for t in TRAFFIC]
CAMPAIGNS = [t.campaign for t in TRAFFIC]


def _month(index: int) -> date:
    """The month `index` months before LAST_MONTH."""
    position = LAST_MONTH.year * 12 + LAST_MONTH.month - 1 - index
    return date(position // 12, position % 12 + 1, 1)


def _month_end(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)


def _traffic_columns(index: np.ndarray) -> dict[str, pa.Array]:
    def labels(values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), values).cast(pa.string())

    return {
        "first_user_default_channel_group": labels(CHANNELS),
        "first_user_source": labels(SOURCES),
        "first_user_medium": labels(MEDIUMS),
        "first_user_campaign_name": labels(CAMPAIGNS),
    }


def _dates(first: date, offsets: np.ndarray) -> pa.Array:
    epoch = (first - date(1970, 1, 1)).days
    return pa.array((epoch + offsets).astype(np.int32), pa.date32())


def _activity_page(rng: np.random.Generator, first: date, rows: int, history_days: int) -> pa.Table:
    """One month of cohort_activity rows: distinct (date, first session, traffic source)."""
    days = (_month_end(first) - first).days + 1
    cells = days * history_days * len(TRAFFIC)
    # Distinct keys: sample cells without replacement, so no two rows share their dimensions.
    chosen = rng.choice(cells, size=min(rows, cells), replace=False)
    day, rest = np.divmod(chosen, history_days * len(TRAFFIC))
    back, traffic = np.divmod(rest, len(TRAFFIC))
    n = len(chosen)
    orders = (rng.random(n) < 0.08).astype(np.int64)
    revenue = np.round(orders * rng.lognormal(np.log(48.0), 0.75, size=n), 2)
    sessions = 1 + rng.poisson(0.4, size=n)
    return pa.table(
        {
            "date": _dates(first, day),
            "first_session_date": _dates(first, day - back),
            **_traffic_columns(traffic),
            "total_revenue": pa.array(revenue),
            "purchase_revenue": pa.array(revenue),
            "transactions": pa.array(orders),
            "ecommerce_purchases": pa.array(orders),
            "sessions": pa.array(sessions),
            "screen_page_views": pa.array(sessions * 3),
            "user_engagement_duration": pa.array(np.round(sessions * 61.5, 3)),
        }
    )


def _acquisition_page(rng: np.random.Generator, first: date) -> pa.Table:
    """One month of acquisition rows: every day x traffic source with its new users."""
    days = (_month_end(first) - first).days + 1
    day, traffic = np.divmod(np.arange(days * len(TRAFFIC)), len(TRAFFIC))
    return pa.table(
        {
            "first_session_date": _dates(first, day),
            **_traffic_columns(traffic),
            "new_users": pa.array(rng.integers(5, 400, size=len(day))),
        }
    )


def _land(db_path: Path, folder: Path, report: ReportDefinition, first: date, table: pa.Table):
    path = folder / f"{report.name}-{first:%Y-%m}.parquet"
    pq.write_table(table, path)
    load = LoadRecord(
        property_id=PROPERTY_ID,
        report=report.name,
        partition_month=first,
        window_start=first,
        window_end=_month_end(first),
        rows_reported=table.num_rows,
        pages=1,
        requests=1,
        quota_tokens_used=None,
        quota_tokens_remaining_daily=None,
        quota_tokens_remaining_hourly=None,
        currency_code="USD",
        time_zone="America/New_York",
        data_loss_from_other_row=False,
        subject_to_thresholding=False,
        sampling_metadata=None,
        is_final=True,
        loaded_at=datetime(2025, 7, 10, tzinfo=UTC),
    )
    replace_partition(db_path, report=report, load=load, parquet_files=[path])
    path.unlink()


def build_warehouse(db_path: Path, *, rows: int, months: int, seed: int = 5) -> int:
    """Land `months` months holding about `rows` raw rows in all; returns the rows landed."""
    rng = np.random.default_rng(seed)
    landed = 0
    per_month = rows // months
    with tempfile.TemporaryDirectory(dir=db_path.parent) as spool:
        for index in reversed(range(months)):
            first = _month(index)
            acquisition = _acquisition_page(rng, first)
            activity = _activity_page(rng, first, per_month - acquisition.num_rows, 3 * 365)
            _land(db_path, Path(spool), ACQUISITION, first, acquisition)
            _land(db_path, Path(spool), COHORT_ACTIVITY, first, activity)
            landed += acquisition.num_rows + activity.num_rows
    return landed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="raw rows, both reports")
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_ltv_") as folder:
        sizes = {"small": args.rows // 5, "full": args.rows}
        paths = {name: Path(folder) / f"{name}.duckdb" for name in sizes}
        landed = {}
        for name, rows in sizes.items():
            started = time.perf_counter()
            landed[name] = build_warehouse(paths[name], rows=rows, months=args.months)
            print(
                f"landed {landed[name]:,} raw rows over {args.months} months "
                f"in {time.perf_counter() - started:.1f} s"
            )
        seconds: dict[str, list[float]] = {name: [] for name in sizes}
        marts: dict[str, int] = {}
        for _ in range(args.repeat):
            for name in sizes:
                started = time.perf_counter()
                counts = build_ltv_tables(paths[name])
                seconds[name].append(time.perf_counter() - started)
                marts[name] = counts["ltv_monthly"]
        for name in sizes:
            median = statistics.median(seconds[name])
            runs = ", ".join(f"{s:.2f}" for s in seconds[name])
            print(
                f"rebuild from {landed[name]:>10,} raw rows: median {median:6.2f} s "
                f"({landed[name] / median:,.0f} rows/s; {marts[name]:,} ltv_monthly rows; "
                f"runs: {runs})"
            )
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f}")
    small, full = (statistics.median(seconds[name]) for name in sizes)
    ratio = landed["full"] / landed["small"]
    print(f"rebuild time, {ratio:.1f}x the rows: {full / small:.2f}x the time")


if __name__ == "__main__":
    main()
