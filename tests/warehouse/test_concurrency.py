"""Several processes loading partitions at once queue on the lock instead of failing."""

from __future__ import annotations

import multiprocessing
from datetime import date
from pathlib import Path

from tests.warehouse.spool import activity_row, land_activity
from warehouse.connection import reader

WORKERS = 4
MONTHS_PER_WORKER = 3
ROWS_PER_LOAD = 200


def _load_months(db: str, folder: str, worker: int) -> int:
    """Land this worker's own months, each twice, as a parallel pipeline run would."""
    landed = 0
    for i in range(MONTHS_PER_WORKER):
        month = date(2023, 1 + worker * MONTHS_PER_WORKER + i, 1)
        rows = [
            activity_row(month.replace(day=1 + n % 28), date(2023, 1, 1), float(n), sessions=1)
            for n in range(ROWS_PER_LOAD)
        ]
        for _ in range(2):
            landed = land_activity(Path(db), Path(folder) / f"w{worker}", month, rows)
    return landed


def test_parallel_processes_replace_their_partitions(db: Path, tmp_path: Path) -> None:
    # spawn, not fork: a forked child would inherit DuckDB's threads mid-flight.
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(_load_months, [(str(db), str(tmp_path), w) for w in range(WORKERS)])
    assert results == [ROWS_PER_LOAD] * WORKERS
    with reader(db) as con:
        per_month = con.execute(
            "select partition_month, count(*), sum(total_revenue)\n"
            "  from raw.ga_cohort_activity\n"
            " group by partition_month\n"
            " order by partition_month"
        ).fetchall()
        loads = con.execute("select count(*) from raw.ga_loads").fetchone()
        history = con.execute("select count(*) from raw.ga_load_history").fetchone()
    expected_revenue = float(sum(range(ROWS_PER_LOAD)))
    assert per_month == [
        (date(2023, m, 1), ROWS_PER_LOAD, expected_revenue)
        for m in range(1, 1 + WORKERS * MONTHS_PER_WORKER)
    ]
    assert loads == (WORKERS * MONTHS_PER_WORKER,)
    assert history == (2 * WORKERS * MONTHS_PER_WORKER,)
