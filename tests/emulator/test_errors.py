"""Requests GA rejects are rejected with GA's status code and a message naming the culprit."""

from __future__ import annotations

import grpc
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    CohortSpec,
    Filter,
    FilterExpression,
    MetricAggregation,
    OrderBy,
    RunReportRequest,
)
from google.api_core import exceptions

from tests.emulator.support import request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MONTH = ("2024-01-01", "2024-01-31")


def _metric_order(name: str) -> OrderBy:
    return OrderBy(metric=OrderBy.MetricOrderBy(metric_name=name))


def _in_list(field: str) -> FilterExpression:
    return FilterExpression(
        filter=Filter(field_name=field, in_list_filter=Filter.InListFilter(values=["x"]))
    )


def _regexp(field: str, pattern: str) -> FilterExpression:
    match = Filter.StringFilter.MatchType.FULL_REGEXP
    return FilterExpression(
        filter=Filter(
            field_name=field, string_filter=Filter.StringFilter(match_type=match, value=pattern)
        )
    )


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
    # orderBys, filters and aggregations that GA would refuse
    (
        request(["date"], ["sessions"], MONTH, order_bys=[OrderBy(desc=True)]),
        INVALID,
        "order_bys[0]",
    ),
    (
        request(["date"], ["sessions"], MONTH, order_bys=[_metric_order("newUsers")]),
        INVALID,
        "newUsers",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=FilterExpression()),
        INVALID,
        "dimension_filter",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=_in_list("sessions")),
        INVALID,
        "sessions",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=_in_list("dateOfBirth")),
        INVALID,
        "dateOfBirth",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=_in_list("country")),
        grpc.StatusCode.UNIMPLEMENTED,
        "country",
    ),
    (
        request(["date"], ["sessions"], MONTH, metric_filter=_in_list("sessions")),
        INVALID,
        "numeric",
    ),
    (
        request(["date"], ["sessions"], MONTH, dimension_filter=_regexp("firstUserSource", "(")),
        INVALID,
        "regexp",
    ),
    (
        request(["date"], ["sessions"], MONTH, metric_aggregations=[MetricAggregation.COUNT]),
        grpc.StatusCode.UNIMPLEMENTED,
        "COUNT",
    ),
    # request parts the emulator does not evaluate yet must not be silently ignored
    (
        request(["date"], ["sessions"], MONTH, cohort_spec=CohortSpec()),
        grpc.StatusCode.UNIMPLEMENTED,
        "cohort",
    ),
    # a currency without a rate in the emulator's table
    (request(["date"], ["sessions"], MONTH, currency_code="XYZ"), INVALID, "currency_code"),
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
