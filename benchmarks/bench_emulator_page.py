"""How long the GA4 emulator takes to serve the first 250,000-row page of a freshly computed report.

A generated property over 36 months, its cohort_activity report for all of them (about twice
GA's page limit), with the result cache off so every request computes the report again:

- through gRPC with the official client (query, texts, encoding, transfer, client parsing),
  and as raw bytes (no client parsing);
- in the engine alone, side by side: metric texts written by the SQL for every row, against
  texts written per block for the rows the page reaches (what the emulator does).

    .venv/bin/python benchmarks/bench_emulator_page.py [--users N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import date

import grpc
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Metric,
    RunReportRequest,
    RunReportResponse,
)

from connectors.auth import build_client
from connectors.emulator.engine import PropertyEngine, Report
from connectors.emulator.generated import generate_property
from connectors.emulator.query import parse_run_report
from connectors.emulator.report_sql import ReportSql
from connectors.emulator.server import CHANNEL_OPTIONS, SERVICE, EmulatorOptions, EmulatorServer
from connectors.reports import COHORT_ACTIVITY

PAGE = 250_000
PROPERTY_ID = "400004"
END = date(2025, 6, 30)
NO_OTHER_ROW = 100_000_000  # three years in one report would otherwise fold into "(other)"


def _median(label: str, action: Callable[[], object], repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    print(f"{label:<52} median {median:6.3f} s  (runs: {runs})")
    return median


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(_load())
    data = generate_property(property_id=PROPERTY_ID, users=args.users, months=36, end=END)
    report = RunReportRequest(
        property=f"properties/{PROPERTY_ID}",
        dimensions=[Dimension(name=d) for d in COHORT_ACTIVITY.dimensions],
        metrics=[Metric(name=m) for m in COHORT_ACTIVITY.metrics],
        date_ranges=[DateRange(start_date="2022-07-01", end_date=END.isoformat())],
        limit=PAGE,
    )
    options = EmulatorOptions(other_row_limit=NO_OTHER_ROW, result_cache_entries=0)
    with EmulatorServer([data], options=options) as server:
        client, _ = build_client(endpoint=server.address)
        first = RunReportResponse.pb(client.run_report(report))
        print(f"rows in report {first.row_count:,}; rows in the first page {len(first.rows):,}")
        client_page = _median(
            "first page, official client (fresh)", lambda: client.run_report(report), args.repeat
        )
        channel = grpc.insecure_channel(server.address, options=CHANNEL_OPTIONS)
        raw = channel.unary_unary(
            f"/{SERVICE}/RunReport", request_serializer=RunReportRequest.serialize
        )
        _median("first page, raw bytes (fresh)", lambda: raw(report), args.repeat)

    engine = PropertyEngine(data, cache_entries=0, other_row_limit=NO_OTHER_ROW)
    query = parse_run_report(
        RunReportRequest.pb(report), today=END, default_limit=10_000, max_rows=PAGE
    ).query
    plan = ReportSql(query)

    def texts_in_sql() -> bytes:
        sql, parameters = plan.rows()
        cursor = engine._connection.cursor()  # the engine's own facts, the old way
        try:
            table = cursor.sql(sql, params=parameters).to_arrow_table()
        finally:
            cursor.close()
        return Report(table, len(plan.dims)).page(0, PAGE)

    def texts_per_block() -> bytes:
        return engine.report(query).page(0, PAGE)

    if texts_in_sql() != texts_per_block():
        raise SystemExit("the two ways give different pages")
    in_sql, per_block = [], []
    for _ in range(args.repeat):
        for seconds, action in ((in_sql, texts_in_sql), (per_block, texts_per_block)):
            started = time.perf_counter()
            action()
            seconds.append(time.perf_counter() - started)
    engine.close()
    for label, seconds in (("engine, texts in SQL for every row", in_sql),
                           ("engine, texts per block (the emulator)", per_block)):  # fmt: skip
        runs = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{label:<52} median {statistics.median(seconds):6.3f} s  (runs: {runs})")
    print(_load())
    print(f"first page within 1 s: {'yes' if client_page < 1.0 else 'no'} ({client_page:.3f} s)")
    ratio = statistics.median(in_sql) / statistics.median(per_block)
    print(f"engine, texts per block vs in SQL: {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
