"""GetMetadata lists GA's 2026 fields with the shapes and declared types clients rely on."""

from __future__ import annotations

from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import MetricType

from connectors.emulator.fields import DIMENSIONS, METRICS
from connectors.emulator.metadata import ui_name
from connectors.ga4_fields import STANDARD_FIELDS


def test_metadata_lists_every_2026_field(client: BetaAnalyticsDataClient) -> None:
    metadata = client.get_metadata(name="properties/100001/metadata")
    assert metadata.name == "properties/100001/metadata"
    listed = {f.api_name: f for f in STANDARD_FIELDS.values() if f.listed_2026}
    dimensions = {d.api_name: d for d in metadata.dimensions}
    metrics = {m.api_name: m for m in metadata.metrics}
    assert set(dimensions) == {n for n, f in listed.items() if f.kind == "dimension"}
    assert set(metrics) == {n for n, f in listed.items() if f.kind == "metric"}
    assert "conversions" not in metrics
    assert set(DIMENSIONS) <= set(dimensions)
    assert set(METRICS) <= set(metrics)


def test_metadata_carries_types_categories_and_deprecated_names(
    client: BetaAnalyticsDataClient,
) -> None:
    metadata = client.get_metadata(name="properties/200002/metadata")
    metrics = {m.api_name: m for m in metadata.metrics}
    dimensions = {d.api_name: d for d in metadata.dimensions}
    assert metrics["totalRevenue"].type_ == MetricType.TYPE_CURRENCY
    assert metrics["userEngagementDuration"].type_ == MetricType.TYPE_SECONDS
    assert metrics["keyEvents"].type_ == MetricType.TYPE_FLOAT
    assert metrics["newUsers"].type_ == MetricType.TYPE_INTEGER
    assert list(dimensions["firstUserDefaultChannelGroup"].deprecated_api_names) == [
        "firstUserDefaultChannelGrouping"
    ]
    assert list(dimensions["firstSessionDate"].deprecated_api_names) == ["firstTouchDate"]
    assert dimensions["firstUserSource"].category == "Traffic Source"
    for field in (*metadata.dimensions, *metadata.metrics):
        assert field.ui_name
        assert field.category == STANDARD_FIELDS[field.api_name].category
    for metric in metadata.metrics:
        assert metric.type_ == MetricType[STANDARD_FIELDS[metric.api_name].metric_type]


def test_property_zero_answers_the_common_metadata(client: BetaAnalyticsDataClient) -> None:
    metadata = client.get_metadata(name="properties/0/metadata")
    assert len(metadata.metrics) > 50


def test_ui_names_are_readable() -> None:
    assert ui_name("firstUserSourceMedium") == "First user source / medium"
    assert ui_name("firstUserDv360CampaignName") == "First user DV360 campaign name"
    assert ui_name("countryId") == "Country ID"
