"""How fast the GA4 emulator generates, loads and serves a report bigger than one page.

Run from the repository root: ``.venv/bin/python -m benchmarks.emulator_pages``.
Generates the three demo properties (the third, JPY one sized by ``--users``), loads them, and
times the cohort_activity report of the large one over 36 months: the first 250,000-row page
(query, encode, transfer, client parsing), a repeat of it (from the result cache), the next
page, the same repeat as raw bytes (no client parsing), and pages over the REST transport.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from connectors.emulator.generated import DEMO_PROPERTIES, LARGE_DEMO_USERS, demo_properties
from connectors.emulator.server import CHANNEL_OPTIONS, SERVICE, EmulatorOptions, EmulatorServer
from connectors.reports import COHORT_ACTIVITY
from tests.emulator.support import make_client, request

PAGE = 250_000
LARGE = next(spec for spec in DEMO_PROPERTIES if spec.large)


def _timed(label: str, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = action()
    print(f"{label:<52} {time.perf_counter() - started:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=LARGE_DEMO_USERS)
    # The official client parses REST pages with json_format, about 100 µs a row.
    parser.add_argument("--rest-rows", type=int, default=50_000, help="rows of the REST page")
    args = parser.parse_args()
    end = date(2025, 6, 30)
    properties = _timed(
        f"generate 3 demo properties ({args.users:,} users in {LARGE.property_id})",
        lambda: demo_properties(end=end, large_users=args.users),
    )
    for data in properties:
        print(f"  properties/{data.property_id}: {data.activity.num_rows:>12,} activity rows")
    # Three years in one report: GA's per-day "(other)" bound would fold most of it.
    options = EmulatorOptions(other_row_limit=100_000_000)
    server = EmulatorServer(properties, rest_port=0, options=options)
    _timed("load into DuckDB and start", server.start)
    with server:
        client = make_client(server.address)
        start = date(end.year - LARGE.months // 12, end.month, 1).isoformat()
        report = request(
            COHORT_ACTIVITY.dimensions,
            COHORT_ACTIVITY.metrics,
            (start, end.isoformat()),
            property_id=LARGE.property_id,
        )
        report.limit = PAGE
        first = _timed("first page, official client (uncached)", lambda: client.run_report(report))
        print(f"{'rows in report':<52} {first.row_count:>9,}")
        print(f"{'rows in first page':<52} {len(RunReportResponse.pb(first).rows):>9,}")
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
        print(f"{'response size':<52} {len(body) / 1e6:9.1f} MB")

        rest = BetaAnalyticsDataClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=f"http://{server.rest_address}"),
        )
        rest_page = RunReportRequest(report, limit=args.rest_rows)
        _timed(
            f"{args.rest_rows:,}-row page over REST, official client (cached)",
            lambda: rest.run_report(rest_page),
        )


if __name__ == "__main__":
    main()
