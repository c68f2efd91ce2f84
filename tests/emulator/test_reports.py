"""RunReport through the official client against a generated property.

Expected values are recomputed here in plain Python from the property's own tables, so the
engine's SQL is checked against an independent reading of the model.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pyarrow.compute as pc
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import DateRange, MetricType

from connectors.emulator.dataset import PropertyData
from connectors.emulator.generated import LONG_CAMPAIGN
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from connectors.ga4_fields import STANDARD_FIELDS
from connectors.reports import (
    ACQUISITION,
    COHORT_ACTIVITY,
    FIRST_USER_DIMENSIONS,
    column_name,
)
from tests.emulator.support import fetch_all, make_client, request, rows

MONTH = ("2024-11-01", "2024-11-30")
_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]{1,6})?$")


def _ga_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _users_by_key(data: PropertyData) -> dict[object, dict]:
    return {u["user_key"]: u for u in data.users.to_pylist()}


def _first_user(user: dict) -> tuple[str, ...]:
    return (
        _ga_date(user["first_session_date"]),
        user["channel_group"],
        user["source"],
        user["medium"],
        user["campaign"],
    )


def _text(value: Decimal | int) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def _in_range(day: date, start: str, end: str) -> bool:
    return date.fromisoformat(start) <= day <= date.fromisoformat(end)


def test_acquisition_report_matches_users_table(
    client: BetaAnalyticsDataClient, generated: PropertyData
) -> None:
    """Every (first-session date, channel, source, medium, campaign) cohort size is exact."""
    expected: dict[tuple[str, ...], int] = defaultdict(int)
    for user in generated.users.to_pylist():
        if _in_range(user["first_session_date"], *MONTH):
            expected[_first_user(user)] += 1
    response = client.run_report(
        request(ACQUISITION.dimensions, ACQUISITION.metrics, MONTH, limit=100_000)
    )
    assert [h.name for h in response.dimension_headers] == list(ACQUISITION.dimensions)
    assert [(h.name, h.type_) for h in response.metric_headers] == [
        ("newUsers", MetricType.TYPE_INTEGER)
    ]
    got = {dims: int(metrics[0]) for dims, metrics in rows(response)}
    assert got == expected
    assert response.row_count == len(expected)


def test_cohort_activity_report_matches_activity_table(
    client: BetaAnalyticsDataClient, generated: PropertyData
) -> None:
    """Sums per date and first-user cohort equal the activity rows, formatted like GA."""
    users = _users_by_key(generated)
    sums: dict[tuple[str, ...], dict[str, Decimal | int]] = {}
    for fact in generated.activity.to_pylist():
        if not _in_range(fact["date"], *MONTH):
            continue
        key = (_ga_date(fact["date"]), *_first_user(users[fact["user_key"]]))
        group = sums.setdefault(key, dict.fromkeys(COHORT_ACTIVITY.metrics, 0))
        for metric in COHORT_ACTIVITY.metrics:
            value = fact[column_name(metric)]
            if isinstance(value, float):
                value = Decimal(repr(value)).quantize(Decimal("0.000001"))
            group[metric] += value
    expected = {
        key: tuple(_text(group[m]) for m in COHORT_ACTIVITY.metrics)
        for key, group in sums.items()
        if any(group.values())
    }
    response = client.run_report(
        request(COHORT_ACTIVITY.dimensions, COHORT_ACTIVITY.metrics, MONTH, limit=100_000)
    )
    assert [h.name for h in response.dimension_headers] == list(COHORT_ACTIVITY.dimensions)
    assert [h.type_ for h in response.metric_headers] == [
        MetricType[STANDARD_FIELDS[m].metric_type] for m in COHORT_ACTIVITY.metrics
    ]
    assert dict(rows(response)) == expected


def test_paging_returns_every_row_exactly_once(client: BetaAnalyticsDataClient) -> None:
    whole = request(
        COHORT_ACTIVITY.dimensions, COHORT_ACTIVITY.metrics, ("2024-01-01", "2024-06-30")
    )
    everything = rows(
        client.run_report(
            request(
                COHORT_ACTIVITY.dimensions,
                COHORT_ACTIVITY.metrics,
                ("2024-01-01", "2024-06-30"),
                limit=250_000,
            )
        )
    )
    paged, counts = fetch_all(client, whole, page_size=997)
    assert len(counts) > 5
    assert set(counts) == {len(everything)}
    assert paged == everything
    assert len({dims for dims, _ in paged}) == len(paged)


def test_rows_are_sorted_by_dimension_values(client: BetaAnalyticsDataClient) -> None:
    got = [
        dims
        for dims, _ in rows(
            client.run_report(
                request(ACQUISITION.dimensions, ACQUISITION.metrics, MONTH, limit=100_000)
            )
        )
    ]
    assert got == sorted(got, key=lambda dims: [d.encode() for d in dims])


def test_offset_past_the_end_returns_no_rows_but_the_count(client: BetaAnalyticsDataClient) -> None:
    response = client.run_report(
        request(ACQUISITION.dimensions, ACQUISITION.metrics, MONTH, offset=10**6)
    )
    assert response.row_count > 0
    assert not response.rows


def test_default_limit_is_ten_thousand(client: BetaAnalyticsDataClient) -> None:
    response = client.run_report(
        request(COHORT_ACTIVITY.dimensions, COHORT_ACTIVITY.metrics, ("2023-06-01", "2025-06-30"))
    )
    assert response.row_count > 10_000
    assert len(response.rows) == 10_000


def test_limit_is_capped_at_the_page_maximum(small_property: PropertyData) -> None:
    """A limit above the server's page maximum (GA: 250,000) returns only the maximum."""
    options = EmulatorOptions(max_rows_per_page=50)
    with EmulatorServer([small_property], options=options) as server:
        response = make_client(server.address).run_report(
            request(
                ["date"],
                ["newUsers"],
                ("2024-01-01", "2024-12-31"),
                property_id="200002",
                limit=1_000,
            )
        )
    assert response.row_count > 300
    assert len(response.rows) == 50


def test_new_users_sum_to_users_acquired(
    client: BetaAnalyticsDataClient, generated: PropertyData
) -> None:
    start, end = date(2024, 3, 1), date(2024, 5, 31)
    acquired = pc.sum(
        pc.and_(
            pc.greater_equal(generated.users["first_session_date"], start),
            pc.less_equal(generated.users["first_session_date"], end),
        )
    ).as_py()
    response = client.run_report(request(["date"], ["newUsers"], (str(start), str(end))))
    assert sum(int(m[0]) for _, m in rows(response)) == acquired
    assert response.row_count == (end - start).days + 1


def test_total_users_are_distinct_not_summed(
    client: BetaAnalyticsDataClient, generated: PropertyData
) -> None:
    month = ("2025-01-01", "2025-01-31")
    ((_, (total, active, new)),) = rows(
        client.run_report(request([], ["totalUsers", "activeUsers", "newUsers"], month))
    )
    daily = rows(client.run_report(request(["date"], ["totalUsers"], month)))
    expected_total = set(
        u["user_key"]
        for u in generated.users.to_pylist()
        if _in_range(u["first_session_date"], *month)
    ) | set(a["user_key"] for a in generated.activity.to_pylist() if _in_range(a["date"], *month))
    assert int(total) == len(expected_total)
    assert sum(int(m[0]) for _, m in daily) > int(total)
    assert int(new) <= int(total)
    assert 0 < int(active) <= int(total)


def test_year_month_groups_the_same_facts_as_date(client: BetaAnalyticsDataClient) -> None:
    span = ("2024-02-01", "2024-03-31")
    metrics = ["newUsers", "sessions", "transactions"]
    monthly = dict(rows(client.run_report(request(["yearMonth"], metrics, span))))
    by_day: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (day,), values in rows(client.run_report(request(["date"], metrics, span))):
        for i, value in enumerate(values):
            by_day[(day[:6],)][i] += int(value)
    assert {k: tuple(str(v) for v in vs) for k, vs in by_day.items()} == monthly
    assert list(monthly) == [("202402",), ("202403",)]


def test_source_medium_and_odd_campaign_names_survive(client: BetaAnalyticsDataClient) -> None:
    got = rows(
        client.run_report(
            request(
                ["firstUserSourceMedium", "firstUserCampaignName"],
                ["newUsers"],
                ("2023-06-01", "2025-06-30"),
            )
        )
    )
    pairs = {dims[0] for dims, _ in got}
    campaigns = {dims[1] for dims, _ in got}
    assert {"google / organic", "(direct) / (none)", "awin / affiliate"} <= pairs
    assert {LONG_CAMPAIGN, "🎉 launch week 🎉", "מבצע קיץ", 'Spring "Sale"; 20% off'} <= campaigns
    assert {"(not set)", "(organic)", "(direct)"} <= campaigns


def test_values_are_plain_integer_and_decimal_text(client: BetaAnalyticsDataClient) -> None:
    metrics = ["sessions", "totalRevenue", "purchaseRevenue", "userEngagementDuration"]
    got = rows(
        client.run_report(request(["date"], metrics, ("2024-01-01", "2024-12-31"), limit=400))
    )
    assert len(got) == 366
    assert all(dims[0].isdigit() and len(dims[0]) == 8 for dims, _ in got)
    assert all(values[0].isdigit() for _, values in got)
    assert all(_DECIMAL_TEXT.match(v) for _, values in got for v in values[1:])
    assert any("." in values[1] for _, values in got)
    assert not any(v.endswith(".0") or "e" in v.lower() for _, values in got for v in values)


def test_deprecated_names_answer_under_the_requested_name(client: BetaAnalyticsDataClient) -> None:
    old = client.run_report(
        request(["firstUserDefaultChannelGrouping", "firstTouchDate"], ["newUsers"], MONTH)
    )
    new = client.run_report(
        request(["firstUserDefaultChannelGroup", "firstSessionDate"], ["newUsers"], MONTH)
    )
    assert [h.name for h in old.dimension_headers] == [
        "firstUserDefaultChannelGrouping",
        "firstTouchDate",
    ]
    assert rows(old) == rows(new)


def test_relative_dates_use_the_property_time_zone(client: BetaAnalyticsDataClient) -> None:
    """The clock is 2025-07-01 12:00 UTC: 2025-06-30 is yesterday in New York."""
    relative = client.run_report(request(["date"], ["sessions"], ("7daysAgo", "yesterday")))
    explicit = client.run_report(request(["date"], ["sessions"], ("2025-06-24", "2025-06-30")))
    assert rows(relative) == rows(explicit)
    assert rows(relative)[-1][0] == ("20250630",)
    today = client.run_report(request(["date"], ["sessions"], ("today", "today")))
    assert today.row_count == 0


def test_several_date_ranges_add_a_date_range_dimension(client: BetaAnalyticsDataClient) -> None:
    report = request(["firstUserDefaultChannelGroup"], ["newUsers"], ("2024-01-01", "2024-01-31"))
    report.date_ranges.append(
        DateRange(start_date="2025-01-01", end_date="2025-01-31", name="this_year")
    )
    response = client.run_report(report)
    assert [h.name for h in response.dimension_headers] == [
        "firstUserDefaultChannelGroup",
        "dateRange",
    ]
    labels = {dims[1] for dims, _ in rows(response)}
    assert labels == {"date_range_0", "this_year"}
    january = dict(
        rows(
            client.run_report(
                request(
                    ["firstUserDefaultChannelGroup"], ["newUsers"], ("2025-01-01", "2025-01-31")
                )
            )
        )
    )
    assert {(d[0],): m for d, m in rows(response) if d[1] == "this_year"} == january


def test_response_metadata_and_quota(client: BetaAnalyticsDataClient) -> None:
    plain = client.run_report(request(["date"], ["newUsers"], MONTH, property_id="200002"))
    assert plain.kind == "analyticsData#runReport"
    assert plain.metadata.currency_code == "USD"
    assert plain.metadata.time_zone == "Asia/Tokyo"
    assert not plain.metadata.data_loss_from_other_row
    assert not plain.metadata.subject_to_thresholding
    assert "property_quota" not in plain
    first = client.run_report(
        request(["date"], ["newUsers"], MONTH, property_id="200002", return_property_quota=True)
    )
    second = client.run_report(
        request(["date"], ["newUsers"], MONTH, property_id="200002", return_property_quota=True)
    )
    assert first.property_quota.tokens_per_day.consumed >= 1
    assert second.property_quota.tokens_per_day.remaining == (
        first.property_quota.tokens_per_day.remaining
        - second.property_quota.tokens_per_day.consumed
    )
    assert second.property_quota.concurrent_requests.remaining == 10


def test_each_property_answers_with_its_own_data(
    client: BetaAnalyticsDataClient, small_property: PropertyData
) -> None:
    response = client.run_report(
        request([], ["newUsers"], ("2015-08-14", "2025-06-30"), property_id="200002")
    )
    assert rows(response) == [((), (str(small_property.users.num_rows),))]


@pytest.mark.parametrize(
    ("dimensions", "metrics"),
    [
        (ACQUISITION.dimensions, ACQUISITION.metrics),  # the pipeline's two reports
        (COHORT_ACTIVITY.dimensions, COHORT_ACTIVITY.metrics),
        (FIRST_USER_DIMENSIONS, ["totalUsers", "activeUsers"]),  # non-additive user counts
        (["date"], []),  # dimensions only
    ],
)
def test_reports_over_the_whole_history_are_not_empty(
    client: BetaAnalyticsDataClient, dimensions: tuple[str, ...], metrics: list[str]
) -> None:
    response = client.run_report(request(dimensions, metrics, ("2015-08-14", "today"), limit=1))
    assert response.row_count > 0
    assert len(response.rows) == 1
