"""Reports past GA's 250,000-row page limit: capped pages, complete paging, quick repeats."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse

from connectors.emulator.generated import generate_property
from connectors.emulator.server import CHANNEL_OPTIONS, SERVICE, EmulatorOptions, EmulatorServer
from connectors.reports import COHORT_ACTIVITY
from tests.emulator.conftest import END
from tests.emulator.support import make_client, request

SPAN = ("2022-07-01", "2025-06-30")


@pytest.fixture(scope="module")
def big_server() -> Iterator[EmulatorServer]:
    data = generate_property(property_id="400004", users=200_000, months=36, end=END)
    # Three years in one report: GA's per-day "(other)" bound would fold most of it.
    options = EmulatorOptions(other_row_limit=10_000_000)
    with EmulatorServer([data], options=options) as server:
        yield server


def test_a_quarter_million_row_page(big_server: EmulatorServer) -> None:
    """A limit above 250,000 returns 250,000 rows; the next page returns the rest."""
    client = make_client(big_server.address)
    report = request(
        COHORT_ACTIVITY.dimensions,
        COHORT_ACTIVITY.metrics,
        SPAN,
        property_id="400004",
        limit=400_000,
    )
    first = RunReportResponse.pb(client.run_report(report))
    assert first.row_count > 250_000
    assert len(first.rows) == 250_000
    rest = RunReportResponse.pb(client.run_report(RunReportRequest(report, offset=250_000)))
    assert len(rest.rows) == first.row_count - 250_000
    assert rest.rows[0].dimension_values[0].value >= first.rows[-1].dimension_values[0].value


def test_a_cached_full_page_is_served_within_a_second(big_server: EmulatorServer) -> None:
    """Paging repeats the same query, so pages after the first come from the result cache."""
    channel = grpc.insecure_channel(big_server.address, options=CHANNEL_OPTIONS)
    run_report = channel.unary_unary(
        f"/{SERVICE}/RunReport", request_serializer=RunReportRequest.serialize
    )
    report = request(
        COHORT_ACTIVITY.dimensions,
        COHORT_ACTIVITY.metrics,
        SPAN,
        property_id="400004",
        limit=250_000,
    )
    run_report(report)
    started = time.perf_counter()
    body = run_report(report)
    elapsed = time.perf_counter() - started
    assert len(RunReportResponse.pb().FromString(body).rows) == 250_000
    assert elapsed < 1.0
