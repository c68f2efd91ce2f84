"""The generated property: deterministic, believable, and shaped as PropertyData promises."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest

from connectors.emulator.channels import default_channel_group
from connectors.emulator.dataset import PropertyData
from connectors.emulator.generated import TRAFFIC, generate_property
from tests.emulator.conftest import END


def test_same_seed_gives_the_same_tables(generated: PropertyData) -> None:
    again = generate_property(end=END)
    assert again.users.equals(generated.users)
    assert again.activity.equals(generated.activity)


def test_another_seed_gives_other_tables(generated: PropertyData) -> None:
    other = generate_property(end=END, seed=8)
    assert not other.activity.equals(generated.activity)


def test_default_end_is_yesterday_in_the_property_time_zone() -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: its yesterday is often UTC's today
    data = generate_property(users=500, months=24, time_zone=zone)
    yesterday = datetime.now(ZoneInfo(zone)).date() - timedelta(days=1)
    newest = max(data.activity["date"].to_pylist())
    assert yesterday - timedelta(days=7) < newest <= yesterday


def test_history_spans_the_requested_months(generated: PropertyData) -> None:
    first = min(generated.users["first_session_date"].to_pylist())
    assert first == date(2023, 6, 1)
    assert generated.users.num_rows == 40_000
    months = {d.replace(day=1) for d in generated.users["first_session_date"].to_pylist()}
    assert len(months) == 25


def test_traffic_table_agrees_with_the_channel_rules() -> None:
    for traffic in TRAFFIC:
        assert default_channel_group(traffic.source, traffic.medium, traffic.campaign) == (
            traffic.channel
        ), traffic
    assert sum(t.share for t in TRAFFIC) == pytest.approx(1.0)


def test_channels_differ_in_lifetime_value(generated: PropertyData) -> None:
    connection = duckdb.connect()
    connection.register("users", generated.users)
    connection.register("activity", generated.activity)
    value = dict(
        connection.execute(
            """
            select u.channel_group, sum(coalesce(a.total_revenue, 0)) / count(distinct u.user_key)
              from users as u
              left join activity as a using (user_key)
             group by all
            """
        ).fetchall()
    )
    assert {"Organic Search", "Direct", "Paid Search", "Paid Social", "Email", "Referral"} <= set(
        value
    )
    assert {"Organic Social", "Display", "Affiliates", "Unassigned"} <= set(value)
    assert value["Email"] > 2 * value["Organic Search"] > 2 * value["Paid Social"]


def test_repeat_purchases_thin_out_with_age(generated: PropertyData) -> None:
    connection = duckdb.connect()
    connection.register("users", generated.users)
    connection.register("activity", generated.activity)
    early, late = connection.execute(
        """
        select avg(a.transactions) filter (where a.date - u.first_session_date between 1 and 60),
               avg(a.transactions) filter (where a.date - u.first_session_date > 365)
          from activity as a
          join users as u using (user_key)
        """
    ).fetchone()
    assert early > 1.5 * late > 0
    buyers, repeaters = connection.execute(
        """
        select count(*), count(*) filter (where orders > 1)
          from (select user_key, sum(transactions) as orders from activity group by all)
         where orders > 0
        """
    ).fetchone()
    assert 0.05 < repeaters / buyers < 0.6


def test_order_values_are_heavy_tailed(generated: PropertyData) -> None:
    revenue = sorted(v for v in generated.activity["purchase_revenue"].to_pylist() if v > 0)
    median = revenue[len(revenue) // 2]
    assert revenue[-1] > 10 * median


def test_million_user_scale_stays_vectorised() -> None:
    """A tenth of the millions-of-rows target must stay fast; a per-user loop would not."""
    started = datetime.now()
    data = generate_property(users=100_000, months=36, end=END)
    assert data.activity.num_rows > 200_000
    assert (datetime.now() - started).total_seconds() < 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"property_id": "G-123"}, "digits"),  # a measurement id is not a property id
        ({"users": pa.table({"user_key": [1]})}, "first_session_date"),
        ({"activity": pa.table({"user_key": [1]})}, "date"),
    ],
)
def test_property_data_rejects_malformed_input(
    small_property: PropertyData, change: dict, message: str
) -> None:
    fields = {
        "property_id": small_property.property_id,
        "display_name": small_property.display_name,
        "time_zone": small_property.time_zone,
        "currency_code": small_property.currency_code,
        "users": small_property.users,
        "activity": small_property.activity,
    }
    with pytest.raises(ValueError, match=message):
        PropertyData(**{**fields, **change})


def test_property_data_rejects_null_campaigns(small_property: PropertyData) -> None:
    campaigns = pa.array([None] * small_property.users.num_rows, pa.string())
    users = small_property.users.set_column(
        small_property.users.schema.get_field_index("campaign"), "campaign", campaigns
    )
    with pytest.raises(ValueError, match="campaign"):
        PropertyData(
            property_id="1",
            display_name="x",
            time_zone="UTC",
            currency_code="USD",
            users=users,
            activity=small_property.activity,
        )
