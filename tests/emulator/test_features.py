"""Filters, orderBys, metric aggregations, BatchRunReports and CheckCompatibility.

Each feature is checked against what the plain report says: a filtered report must equal the
unfiltered one narrowed by hand, an ordered one the same rows sorted by hand.
"""

from __future__ import annotations

import re
from collections import defaultdict

import grpc
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    CheckCompatibilityRequest,
    Compatibility,
    Dimension,
    Filter,
    FilterExpression,
    FilterExpressionList,
    Metric,
    MetricAggregation,
    NumericValue,
    OrderBy,
)
from google.api_core import exceptions

from tests.emulator.support import Row, request, rows

MONTH = ("2024-11-01", "2024-11-30")
CHANNEL_SOURCE = ["firstUserDefaultChannelGroup", "firstUserSource"]
MatchType = Filter.StringFilter.MatchType


def _string(field: str, match: MatchType, value: str, case: bool = False) -> FilterExpression:
    return FilterExpression(
        filter=Filter(
            field_name=field,
            string_filter=Filter.StringFilter(match_type=match, value=value, case_sensitive=case),
        )
    )


def _numeric(field: str, operation: Filter.NumericFilter.Operation, value: int) -> FilterExpression:
    return FilterExpression(
        filter=Filter(
            field_name=field,
            numeric_filter=Filter.NumericFilter(
                operation=operation, value=NumericValue(int64_value=value)
            ),
        )
    )


def _baseline(client: BetaAnalyticsDataClient) -> list[Row]:
    return rows(client.run_report(request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH)))


@pytest.mark.parametrize(
    ("expression", "keep"),
    [
        # exact matching is case-insensitive unless asked otherwise
        (
            _string("firstUserDefaultChannelGroup", MatchType.EXACT, "email"),
            lambda d: d[0] == "Email",
        ),
        (_string("firstUserDefaultChannelGroup", MatchType.EXACT, "email", True), lambda d: False),
        (
            _string("firstUserSource", MatchType.BEGINS_WITH, "goo"),
            lambda d: d[1].startswith("goo"),
        ),
        (_string("firstUserSource", MatchType.ENDS_WITH, ".COM"), lambda d: d[1].endswith(".com")),
        (_string("firstUserSource", MatchType.CONTAINS, "o"), lambda d: "o" in d[1].lower()),
        (
            _string("firstUserSource", MatchType.FULL_REGEXP, "B.*G"),
            lambda d: re.fullmatch("b.*g", d[1]) is not None,
        ),
        (
            _string("firstUserDefaultChannelGroup", MatchType.PARTIAL_REGEXP, "^paid"),
            lambda d: d[0].startswith("Paid"),
        ),
        (
            FilterExpression(
                filter=Filter(
                    field_name="firstUserSource",
                    in_list_filter=Filter.InListFilter(values=["Google", "awin"]),
                )
            ),
            lambda d: d[1] in ("google", "awin"),
        ),
        (
            FilterExpression(filter=Filter(field_name="firstUserSource", empty_filter={})),
            lambda d: d[1] == "(not set)",
        ),
        # groups: and, or, not, on a field that is not in the report's dimensions
        (
            FilterExpression(
                and_group=FilterExpressionList(
                    expressions=[
                        _string("firstUserSource", MatchType.EXACT, "google"),
                        FilterExpression(
                            not_expression=_string("firstUserMedium", MatchType.EXACT, "organic")
                        ),
                    ]
                )
            ),
            lambda d: d[1] == "google" and d[0] != "Organic Search",
        ),
        (
            FilterExpression(
                or_group=FilterExpressionList(
                    expressions=[
                        _string("firstUserDefaultChannelGroup", MatchType.EXACT, "Direct"),
                        _string("firstUserSource", MatchType.EXACT, "bing"),
                    ]
                )
            ),
            lambda d: d[0] == "Direct" or d[1] == "bing",
        ),
    ],
)
def test_dimension_filters_narrow_the_rows(
    client: BetaAnalyticsDataClient, expression: FilterExpression, keep
) -> None:
    expected = [row for row in _baseline(client) if keep(row[0])]
    filtered = client.run_report(
        request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH, dimension_filter=expression)
    )
    assert rows(filtered) == expected


def test_a_dimension_filter_applies_before_aggregation(client: BetaAnalyticsDataClient) -> None:
    by_channel_day = rows(
        client.run_report(request(["date", "firstUserDefaultChannelGroup"], ["newUsers"], MONTH))
    )
    expected = [(d[:1], m) for d, m in by_channel_day if d[1] == "Email"]
    email = _string("firstUserDefaultChannelGroup", MatchType.EXACT, "Email")
    got = rows(client.run_report(request(["date"], ["newUsers"], MONTH, dimension_filter=email)))
    assert got == expected


def test_metric_filters_apply_after_aggregation(client: BetaAnalyticsDataClient) -> None:
    busy = _numeric("sessions", Filter.NumericFilter.Operation.GREATER_THAN, 100)
    expected = [row for row in _baseline(client) if int(row[1][1]) > 100]
    got = rows(
        client.run_report(
            request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH, metric_filter=busy)
        )
    )
    assert got == expected
    assert 0 < len(got) < len(_baseline(client))
    # a metric the report does not show can filter it too
    hidden = rows(
        client.run_report(request(CHANNEL_SOURCE, ["newUsers"], MONTH, metric_filter=busy))
    )
    assert hidden == [(d, m[:1]) for d, m in expected]


def test_between_filter(client: BetaAnalyticsDataClient) -> None:
    between = FilterExpression(
        filter=Filter(
            field_name="newUsers",
            between_filter=Filter.BetweenFilter(
                from_value=NumericValue(int64_value=10), to_value=NumericValue(double_value=50.0)
            ),
        )
    )
    expected = [row for row in _baseline(client) if 10 <= int(row[1][0]) <= 50]
    got = rows(
        client.run_report(
            request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH, metric_filter=between)
        )
    )
    assert got == expected


def test_order_by_metric_then_dimensions(client: BetaAnalyticsDataClient) -> None:
    order = [OrderBy(metric=OrderBy.MetricOrderBy(metric_name="newUsers"), desc=True)]
    got = rows(
        client.run_report(request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH, order_bys=order))
    )
    expected = sorted(_baseline(client), key=lambda r: (-int(r[1][0]), [v.encode() for v in r[0]]))
    assert got == expected


def test_order_by_dimension_descending_and_numeric(client: BetaAnalyticsDataClient) -> None:
    descending = [
        OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name="firstUserSource"), desc=True)
    ]
    got = rows(
        client.run_report(request(CHANNEL_SOURCE, ["newUsers"], MONTH, order_bys=descending))
    )
    assert [d[1] for d, _ in got] == sorted((d[1] for d, _ in got), reverse=True)
    numeric = OrderBy.DimensionOrderBy.OrderType.NUMERIC
    by_day = [
        OrderBy(
            dimension=OrderBy.DimensionOrderBy(dimension_name="date", order_type=numeric), desc=True
        )
    ]
    days = [
        d[0]
        for d, _ in rows(
            client.run_report(request(["date"], ["newUsers"], MONTH, order_bys=by_day))
        )
    ]
    assert days == sorted(days, reverse=True)
    assert days[0] == "20241130"


def test_ordered_paging_loses_no_row(client: BetaAnalyticsDataClient) -> None:
    order = [OrderBy(metric=OrderBy.MetricOrderBy(metric_name="newUsers"))]
    whole = rows(client.run_report(request(CHANNEL_SOURCE, ["newUsers"], MONTH, order_bys=order)))
    paged = []
    for offset in range(0, len(whole), 7):
        paged += rows(
            client.run_report(
                request(
                    CHANNEL_SOURCE, ["newUsers"], MONTH, order_bys=order, limit=7, offset=offset
                )
            )
        )
    assert paged == whole


def test_metric_aggregations(client: BetaAnalyticsDataClient) -> None:
    aggregations = [MetricAggregation.TOTAL, MetricAggregation.MAXIMUM, MetricAggregation.MINIMUM]
    metrics = ["newUsers", "totalUsers", "totalRevenue"]
    response = client.run_report(
        request(["date"], metrics, MONTH, metric_aggregations=aggregations)
    )
    got = rows(response)
    (total,) = response.totals
    assert [v.value for v in total.dimension_values] == ["RESERVED_TOTAL"]
    totals = [v.value for v in total.metric_values]
    assert int(totals[0]) == sum(int(m[0]) for _, m in got)
    assert int(totals[1]) < sum(int(m[1]) for _, m in got)  # distinct users, not a sum
    (whole_month,) = rows(client.run_report(request([], ["totalUsers"], MONTH)))
    assert totals[1] == whole_month[1][0]
    assert response.maximums[0].metric_values[0].value == str(max(int(m[0]) for _, m in got))
    assert [v.value for v in response.minimums[0].dimension_values] == ["RESERVED_MIN"]
    assert response.minimums[0].metric_values[0].value == str(min(int(m[0]) for _, m in got))
    plain = client.run_report(request(["date"], metrics, MONTH))
    assert not plain.totals


def test_totals_per_date_range(client: BetaAnalyticsDataClient) -> None:
    report = request(
        ["firstUserDefaultChannelGroup"],
        ["newUsers"],
        MONTH,
        ("2025-01-01", "2025-01-31"),
        metric_aggregations=[MetricAggregation.TOTAL],
    )
    response = client.run_report(report)
    sums: dict[str, int] = defaultdict(int)
    for dims, metrics in rows(response):
        sums[dims[1]] += int(metrics[0])
    totals = {
        row.dimension_values[1].value: int(row.metric_values[0].value) for row in response.totals
    }
    assert totals == sums
    assert [row.dimension_values[0].value for row in response.totals] == ["RESERVED_TOTAL"] * 2


def test_batch_run_reports(client: BetaAnalyticsDataClient) -> None:
    first = request(["date"], ["newUsers"], MONTH)
    first.property = ""  # a batch's requests may leave the property to the batch
    second = request(CHANNEL_SOURCE, ["newUsers", "sessions"], MONTH)
    batch = client.batch_run_reports(
        BatchRunReportsRequest(property="properties/100001", requests=[first, second])
    )
    assert batch.kind == "analyticsData#batchRunReports"
    assert len(batch.reports) == 2
    assert rows(batch.reports[0]) == rows(client.run_report(request(["date"], ["newUsers"], MONTH)))
    assert rows(batch.reports[1]) == _baseline(client)
    assert batch.reports[1].kind == "analyticsData#runReport"


@pytest.mark.parametrize(
    ("requests", "named"),
    [
        ([request(["date"], ["newUsers"], MONTH)] * 6, "at most 5"),
        ([], "at least one"),
        ([request(["date"], ["newUsers"], MONTH, property_id="200002")], "requests[0].property"),
        (
            [request(["date"], ["newUsers"], MONTH), request(["date"], ["bogus"], MONTH)],
            "requests[1]",
        ),
    ],
)
def test_bad_batches_are_rejected(
    client: BetaAnalyticsDataClient, requests: list, named: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        client.batch_run_reports(
            BatchRunReportsRequest(property="properties/100001", requests=requests)
        )
    assert named in caught.value.message


def test_check_compatibility(client: BetaAnalyticsDataClient) -> None:
    answer = client.check_compatibility(
        CheckCompatibilityRequest(
            property="properties/100001",
            dimensions=[Dimension(name="date")],
            metrics=[Metric(name="newUsers")],
        )
    )
    dimensions = {
        c.dimension_metadata.api_name: c.compatibility for c in answer.dimension_compatibilities
    }
    metrics = {c.metric_metadata.api_name: c.compatibility for c in answer.metric_compatibilities}
    assert dimensions["firstUserSource"] == Compatibility.COMPATIBLE
    assert dimensions["country"] == Compatibility.INCOMPATIBLE
    assert metrics["totalRevenue"] == Compatibility.COMPATIBLE
    assert metrics["bounceRate"] == Compatibility.INCOMPATIBLE
    only_compatible = client.check_compatibility(
        CheckCompatibilityRequest(
            property="properties/100001",
            metrics=[Metric(name="sessions")],
            compatibility_filter=Compatibility.COMPATIBLE,
        )
    )
    assert {c.metric_metadata.api_name for c in only_compatible.metric_compatibilities} == {
        "newUsers", "totalUsers", "activeUsers", "sessions", "screenPageViews", "transactions",
        "ecommercePurchases", "purchaseRevenue", "totalRevenue", "userEngagementDuration",
    }  # fmt: skip
    unanswerable = client.check_compatibility(
        CheckCompatibilityRequest(
            property="properties/100001", dimensions=[Dimension(name="country")]
        )
    )
    assert {c.compatibility for c in unanswerable.metric_compatibilities} == {
        Compatibility.INCOMPATIBLE
    }
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        client.check_compatibility(
            CheckCompatibilityRequest(property="properties/100001", metrics=[Metric(name="nope")])
        )
    assert caught.value.grpc_status_code == grpc.StatusCode.INVALID_ARGUMENT
