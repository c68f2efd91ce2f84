"""Requests GA rejects are rejected with GA's status code and a message naming the culprit."""

from __future__ import annotations

import grpc
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    FilterExpression,
    OrderBy,
    RunReportRequest,
)
from google.api_core import exceptions

from tests.emulator.support import request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MONTH = ("2024-01-01", "2024-01-31")


def _ranges(*ranges: tuple[str, str]) -> list[DateRange]:
    return [DateRange(start_date=s, end_date=e) for s, e in ranges]


CASES = [
    # unknown names, and names of the wrong kind
    (request(["dateOfBirth"], ["newUsers"], MONTH), INVALID, "dateOfBirth"),
    (request(["date"], ["revenuePerMoon"], MONTH), INVALID, "revenuePerMoon"),
    (request(["newUsers"], ["sessions"], MONTH), INVALID, "newUsers"),
    (request(["date", "date"], ["sessions"], MONTH), INVALID, "date"),
    # a field GA no longer lists
    (request(["date"], ["conversions"], MONTH), INVALID, "conversions"),
    # real GA fields the emulator does not compute
    (request(["country"], ["sessions"], MONTH), grpc.StatusCode.UNIMPLEMENTED, "country"),
    (request(["date"], ["bounceRate"], MONTH), grpc.StatusCode.UNIMPLEMENTED, "bounceRate"),
    # size limits
    (request(["date"] * 10, ["sessions"], MONTH), INVALID, "9 dimensions"),
    (request(["date"], ["sessions"] * 11, MONTH), INVALID, "10 metrics"),
    (request(["date"], ["sessions"], *[MONTH] * 5), INVALID, "4 date ranges"),
    (request(["date"], ["sessions"]), INVALID, "date range"),
    (request([], [], MONTH), INVALID, "dimension or metric"),
    # dates
    (request(["date"], ["sessions"], ("2024-13-01", "2024-12-31")), INVALID, "start_date"),
    (request(["date"], ["sessions"], ("2024-01-01", "last week")), INVALID, "end_date"),
    (request(["date"], ["sessions"], ("2024-01-01", "")), INVALID, "date_ranges[0].end_date"),
    (request(["date"], ["sessions"], ("2024-02-01", "2024-01-01")), INVALID, "after its end"),
    (request(["date"], ["sessions"], ("2010-01-01", "2024-01-01")), INVALID, "2015-08-14"),
    (request(["date"], ["sessions"], MONTH, ("9daysAgo", "99999999daysAgo")), INVALID, "[1]"),
    # paging
    (request(["date"], ["sessions"], MONTH, limit=-1), INVALID, "limit"),
    (request(["date"], ["sessions"], MONTH, offset=-5), INVALID, "offset"),
    # the property
    (request(["date"], ["sessions"], MONTH, property_id="G-ABC123"), INVALID, "measurement id"),
    (request(["date"], ["sessions"], MONTH, property_id="12x"), INVALID, "properties/12x"),
    (
        request(["date"], ["sessions"], MONTH, property_id="999"),
        grpc.StatusCode.PERMISSION_DENIED,
        "999",
    ),
    # request parts the emulator does not evaluate yet must not be silently ignored
    (
        request(["date"], ["sessions"], MONTH, order_bys=[OrderBy(desc=True)]),
        grpc.StatusCode.UNIMPLEMENTED,
        "order_bys",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=FilterExpression()),
        grpc.StatusCode.UNIMPLEMENTED,
        "dimension_filter",
    ),
    (
        request(["date"], ["sessions"], MONTH, currency_code="EUR"),
        grpc.StatusCode.UNIMPLEMENTED,
        "currency",
    ),
]


@pytest.mark.parametrize(("report", "code", "named"), CASES)
def test_bad_requests_are_rejected(
    client: BetaAnalyticsDataClient, report: RunReportRequest, code: grpc.StatusCode, named: str
) -> None:
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        client.run_report(report)
    assert caught.value.grpc_status_code == code
    assert named in caught.value.message


def test_unknown_property_metadata_is_permission_denied(client: BetaAnalyticsDataClient) -> None:
    with pytest.raises(exceptions.PermissionDenied, match="123"):
        client.get_metadata(name="properties/123/metadata")


def test_malformed_metadata_name_is_invalid(client: BetaAnalyticsDataClient) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="metadata"):
        client.get_metadata(name="properties/100001")
