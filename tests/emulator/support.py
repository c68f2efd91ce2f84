"""Helpers the emulator tests share: a client on a local channel and row unpacking."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports import (
    BetaAnalyticsDataGrpcTransport,
)
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Metric,
    RunReportRequest,
    RunReportResponse,
)

from connectors.emulator.server import CHANNEL_OPTIONS

Row = tuple[tuple[str, ...], tuple[str, ...]]


def make_client(address: str) -> BetaAnalyticsDataClient:
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    return BetaAnalyticsDataClient(transport=BetaAnalyticsDataGrpcTransport(channel=channel))


def request(
    dimensions: Sequence[str],
    metrics: Sequence[str],
    *ranges: tuple[str, str],
    property_id: str = "100001",
    **fields: object,
) -> RunReportRequest:
    return RunReportRequest(
        property=f"properties/{property_id}",
        dimensions=[Dimension(name=d) for d in dimensions],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=s, end_date=e) for s, e in ranges],
        **fields,
    )


def rows(response: RunReportResponse) -> list[Row]:
    """Rows as plain tuples, read from the raw protobuf because proto-plus is slow at scale."""
    raw = RunReportResponse.pb(response)
    return [
        (
            tuple(v.value for v in row.dimension_values),
            tuple(v.value for v in row.metric_values),
        )
        for row in raw.rows
    ]


def fetch_all(
    client: BetaAnalyticsDataClient, report: RunReportRequest, page_size: int
) -> tuple[list[Row], list[int]]:
    """Every row of a report, paged with ``limit``; also each page's ``row_count``."""
    collected: list[Row] = []
    counts: list[int] = []
    offset = 0
    while True:
        page = RunReportRequest(report, limit=page_size, offset=offset)
        response = client.run_report(page)
        counts.append(response.row_count)
        collected += rows(response)
        offset += page_size
        if offset >= response.row_count:
            return collected, counts
