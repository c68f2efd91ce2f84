"""How fast the GA4 emulator generates, loads and serves a report bigger than one page.

Run from the repository root: ``.venv/bin/python -m benchmarks.emulator_pages``.
Times the cohort_activity report over 36 months: the first 250,000-row page (query, encode,
transfer, client parsing), a repeat of it (from the result cache), the next page, and the
same repeat as raw bytes, which leaves out the official client's own parsing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

import grpc
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse

from connectors.emulator.generated import generate_property
from connectors.emulator.server import CHANNEL_OPTIONS, SERVICE, EmulatorServer
from connectors.reports import COHORT_ACTIVITY
from tests.emulator.support import make_client, request

PAGE = 250_000


def _timed(label: str, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = action()
    print(f"{label:<44} {time.perf_counter() - started:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=250_000)
    parser.add_argument("--months", type=int, default=36)
    args = parser.parse_args()
    end = date(2025, 6, 30)
    data = _timed(
        f"generate {args.users:,} users, {args.months} months",
        lambda: generate_property(users=args.users, months=args.months, end=end),
    )
    server = EmulatorServer([data])
    _timed("load into DuckDB and start", server.start)
    with server:
        client = make_client(server.address)
        start = date(end.year - args.months // 12, end.month, 1).isoformat()
        report = request(
            COHORT_ACTIVITY.dimensions, COHORT_ACTIVITY.metrics, (start, end.isoformat())
        )
        report.limit = PAGE
        first = _timed("first page, official client (uncached)", lambda: client.run_report(report))
        print(f"{'rows in report':<44} {first.row_count:>9,}")
        print(f"{'rows in first page':<44} {len(RunReportResponse.pb(first).rows):>9,}")
        _timed("same page again, official client (cached)", lambda: client.run_report(report))
        _timed(
            "next page, official client",
            lambda: client.run_report(RunReportRequest(report, offset=PAGE)),
        )
        channel = grpc.insecure_channel(server.address, options=CHANNEL_OPTIONS)
        raw = channel.unary_unary(
            f"/{SERVICE}/RunReport", request_serializer=RunReportRequest.serialize
        )
        body = _timed("same page again, raw bytes (cached)", lambda: raw(report))
        print(f"{'response size':<44} {len(body) / 1e6:9.1f} MB")


if __name__ == "__main__":
    main()
