"""A synthetic but believable GA4 property, so the pipeline can run without Google.

Everything is drawn with numpy in whole-array steps from one seeded generator, so a seed and an
end date always give the same tables and a few million users still generate in seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from connectors.emulator.channels import default_channel_group
from connectors.emulator.currency import UNITS_PER_USD, minor_digits
from connectors.emulator.dataset import PropertyData

logger = logging.getLogger(__name__)

_EPOCH = date(1970, 1, 1)
LONG_CAMPAIGN = ("affiliate_partner_" + "long-tail-keyword-" * 60)[:1000]


@dataclass(frozen=True)
class TrafficSource:
    """One first-user source / medium / campaign and its share of acquisitions."""

    source: str
    medium: str
    campaign: str
    share: float
    channel: str  # what GA's default rules should call it; the tests hold channels.py to it


# Shares sum to 1. Campaign names include the oddities real properties carry: quotes,
# separators, emoji, right-to-left text, a 1,000-character name and GA's placeholders.
TRAFFIC: tuple[TrafficSource, ...] = (
    TrafficSource("google", "organic", "(organic)", 0.230, "Organic Search"),
    TrafficSource("bing", "organic", "(organic)", 0.030, "Organic Search"),
    TrafficSource("duckduckgo", "organic", "(organic)", 0.015, "Organic Search"),
    TrafficSource("(direct)", "(none)", "(direct)", 0.190, "Direct"),
    TrafficSource("google", "cpc", "brand_search", 0.050, "Paid Search"),
    TrafficSource("google", "cpc", 'Spring "Sale"; 20% off', 0.040, "Paid Search"),
    TrafficSource("bing", "cpc", "generic, broad match", 0.020, "Paid Search"),
    TrafficSource("google", "cpc", "shopping_feed_all_products", 0.015, "Paid Shopping"),
    TrafficSource("google", "cpc", "pmax cross-network", 0.010, "Cross-network"),
    TrafficSource("facebook", "paid_social", "🎉 launch week 🎉", 0.035, "Paid Social"),
    TrafficSource("instagram", "cpc", "summer, sale; 'limited'", 0.025, "Paid Social"),
    TrafficSource("tiktok", "paid_social", "מבצע קיץ", 0.015, "Paid Social"),
    TrafficSource("youtube", "cpv", "pre-roll 📺", 0.010, "Paid Video"),
    TrafficSource("newsletter", "email", "weekly_digest", 0.035, "Email"),
    TrafficSource("crm", "email", 'Black Friday; "VIP" early access', 0.025, "Email"),
    TrafficSource("blog.example.org", "referral", "(referral)", 0.040, "Referral"),
    TrafficSource("news.example.com", "referral", "(referral)", 0.030, "Referral"),
    TrafficSource("facebook.com", "referral", "(referral)", 0.030, "Organic Social"),
    TrafficSource("t.co", "referral", "(referral)", 0.015, "Organic Social"),
    TrafficSource("linkedin.com", "social", "عرض خاص", 0.010, "Organic Social"),
    TrafficSource("youtube.com", "referral", "(referral)", 0.010, "Organic Video"),
    TrafficSource("dv360", "cpm", "retargeting, broad", 0.020, "Display"),
    TrafficSource("googleads.g.doubleclick.net", "display", "remarketing_q4", 0.015, "Display"),
    TrafficSource("awin", "affiliate", LONG_CAMPAIGN, 0.020, "Affiliates"),
    TrafficSource("partnerize", "affiliate", "coupon-sites", 0.015, "Affiliates"),
    TrafficSource("criteo", "retargeting", "dynamic_products", 0.010, "Paid Other"),
    TrafficSource("shopping.google.com", "referral", "(not set)", 0.005, "Organic Shopping"),
    TrafficSource("sms", "sms", "flash_sale", 0.005, "SMS"),
    TrafficSource("(not set)", "(not set)", "(not set)", 0.020, "Unassigned"),
    TrafficSource("<Other>", "<Other>", "<Other>", 0.010, "Unassigned"),
)


@dataclass(frozen=True)
class _Behaviour:
    """How a channel's users differ: returns, purchase propensity and basket size."""

    returns: float
    buying: float
    basket: float


_BEHAVIOUR = {
    "Direct": _Behaviour(1.3, 1.3, 1.1),
    "Organic Search": _Behaviour(1.0, 1.0, 1.0),
    "Paid Search": _Behaviour(0.9, 1.15, 1.0),
    "Paid Shopping": _Behaviour(0.8, 1.4, 0.9),
    "Paid Social": _Behaviour(0.55, 0.55, 0.8),
    "Email": _Behaviour(1.8, 1.9, 1.25),
    "Referral": _Behaviour(1.1, 1.2, 1.1),
    "Organic Social": _Behaviour(0.7, 0.7, 0.85),
    "Display": _Behaviour(0.45, 0.45, 0.9),
    "Affiliates": _Behaviour(0.8, 1.5, 0.85),
    "Unassigned": _Behaviour(0.7, 0.8, 1.0),
}
_DEFAULT_BEHAVIOUR = _Behaviour(0.8, 0.9, 1.0)


def _month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _acquisition_weights(first_day: int, n_days: int) -> np.ndarray:
    """Daily share of acquisitions: growth, a November/December peak and quieter weekends."""
    day_numbers = first_day + np.arange(n_days)
    dates = np.datetime64("1970-01-01") + day_numbers.astype("timedelta64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    weekday = (day_numbers + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday
    growth = np.exp(0.35 * np.arange(n_days) / 365.0)
    holiday = 1.0 + 0.8 * np.exp(-(((day_of_year - 335) / 18.0) ** 2))
    summer = 1.0 - 0.12 * np.exp(-(((day_of_year - 200) / 30.0) ** 2))
    weekend = np.where(weekday >= 5, 0.8, 1.0)
    weights = growth * holiday * summer * weekend
    return weights / weights.sum()


def generate_property(
    *,
    property_id: str = "100001",
    seed: int = 7,
    months: int = 25,
    users: int = 40_000,
    end: date | None = None,
    time_zone: str = "America/New_York",
    currency_code: str = "USD",
) -> PropertyData:
    """A property with ``users`` users acquired over ``months`` calendar months up to ``end``.

    ``end`` is the last day with data, by default yesterday in the property's time zone, so a
    report for "yesterday" is never empty. The same seed and end give identical tables.
    """
    if months < 1 or users < 1:
        raise ValueError("months and users must be positive")
    if end is None:
        end = datetime.now(ZoneInfo(time_zone)).date() - timedelta(days=1)
    start = _month_start(end, months - 1)
    first_day, n_days = (start - _EPOCH).days, (end - start).days + 1
    rng = np.random.default_rng(seed)

    acquired = np.sort(rng.choice(n_days, size=users, p=_acquisition_weights(first_day, n_days)))
    shares = np.array([t.share for t in TRAFFIC])
    traffic = rng.choice(len(TRAFFIC), size=users, p=shares / shares.sum())
    channels = [default_channel_group(t.source, t.medium, t.campaign) for t in TRAFFIC]
    behaviour = [_BEHAVIOUR.get(c, _DEFAULT_BEHAVIOUR) for c in channels]
    returns = np.array([b.returns for b in behaviour])[traffic]
    buying = np.array([b.buying for b in behaviour])[traffic]
    basket = np.array([b.basket for b in behaviour])[traffic]

    user_table = pa.table(
        {
            "user_key": pa.array(np.arange(1, users + 1, dtype=np.int64)),
            "first_session_date": pa.array(
                (first_day + acquired).astype(np.int32), type=pa.date32()
            ),
            "channel_group": _labels(channels, traffic),
            "source": _labels([t.source for t in TRAFFIC], traffic),
            "medium": _labels([t.medium for t in TRAFFIC], traffic),
            "campaign": _labels([t.campaign for t in TRAFFIC], traffic),
        }
    )
    activity = _activity(rng, acquired, n_days, first_day, returns, buying, basket)
    logger.info(
        "generated property %s: %d users, %d activity rows, %s to %s",
        property_id,
        users,
        activity.num_rows,
        start,
        end,
    )
    return PropertyData(
        property_id=property_id,
        display_name=f"Generated store {property_id}",
        time_zone=time_zone,
        currency_code=currency_code,
        users=user_table,
        activity=activity,
    )


def _labels(values: list[str], index: np.ndarray) -> pa.Array:
    dictionary = pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), values)
    return dictionary.cast(pa.string())


def _activity(
    rng: np.random.Generator,
    acquired: np.ndarray,
    n_days: int,
    first_day: int,
    returns: np.ndarray,
    buying: np.ndarray,
    basket: np.ndarray,
) -> pa.Table:
    """Active days per user: the first session, then returns that thin out with age."""
    n_users = len(acquired)
    loyalty = rng.gamma(0.6, 1.0 / 0.6, size=n_users) * returns
    return_count = rng.poisson(2.5 * loyalty)
    owner = np.repeat(np.arange(n_users), return_count)
    # Each user keeps their own pace; the exponential gaps make later months sparser.
    pace = rng.lognormal(np.log(90.0), 0.8, size=n_users)
    offsets = 1 + np.floor(rng.exponential(pace[owner])).astype(np.int64)
    user_index = np.concatenate([np.arange(n_users), owner])
    day = np.concatenate([acquired, acquired[owner] + offsets])
    keep = day < n_days
    key = np.unique(user_index[keep].astype(np.int64) * n_days + day[keep])
    user_index, day = key // n_days, key % n_days
    rows = len(key)

    age = day - acquired[user_index]
    propensity = rng.beta(0.8, 9.0, size=n_users)[user_index] * buying[user_index]
    decay = np.where(age == 0, 0.45, 0.15 + 0.5 * np.exp(-age / 240.0))
    orders = (rng.random(rows) < np.clip(propensity * decay, 0.0, 0.9)).astype(np.int64)
    orders += orders * (rng.random(rows) < 0.06)
    # A few purchase events are resent without a new transaction id.
    purchase_events = orders + (orders > 0) * (rng.random(rows) < 0.02)
    order_value = rng.lognormal(np.log(48.0), 0.75, size=rows) * basket[user_index]
    whales = rng.random(rows) < 0.004
    order_value[whales] *= 4.0 + rng.pareto(1.6, size=int(whales.sum()))
    revenue = np.round(orders * order_value, 2)
    refunded = (revenue > 0) & (rng.random(rows) < 0.04)
    refund = np.round(np.where(refunded, revenue * rng.uniform(0.3, 1.0, size=rows), 0.0), 2)

    sessions = 1 + rng.poisson(0.3 + 0.1 * orders)
    page_views = sessions + rng.poisson(2.6 * sessions) + 3 * orders
    engagement = np.round(sessions * rng.gamma(2.0, 40.0, size=rows) + 90.0 * orders, 3)
    engaged = (orders > 0) | (rng.random(rows) < 0.68)
    return pa.table(
        {
            "user_key": pa.array(user_index + 1),
            "date": pa.array((first_day + day).astype(np.int32), type=pa.date32()),
            "sessions": pa.array(sessions.astype(np.int64)),
            "screen_page_views": pa.array(page_views.astype(np.int64)),
            "transactions": pa.array(orders),
            "ecommerce_purchases": pa.array(purchase_events.astype(np.int64)),
            "purchase_revenue": pa.array(revenue),
            "total_revenue": pa.array(np.round(revenue - refund, 2)),
            "user_engagement_duration": pa.array(engagement),
            "engaged": pa.array(engaged),
        }
    )


@dataclass(frozen=True)
class DemoProperty:
    """One property of the demo set: where it is, what it sells in, and how big it is."""

    property_id: str
    time_zone: str
    currency_code: str
    users: int
    months: int
    seed: int
    google_signals: bool = False
    large: bool = False  # sized by demo_properties(large_users=...)


# The first is the embedded demo property; the third is big enough to benchmark paging.
LARGE_DEMO_USERS = 1_500_000
DEMO_PROPERTIES = (
    DemoProperty("100001", "America/New_York", "USD", 40_000, 25, seed=7),
    DemoProperty("100002", "Europe/Berlin", "EUR", 60_000, 36, seed=8, google_signals=True),
    DemoProperty("100003", "Asia/Tokyo", "JPY", LARGE_DEMO_USERS, 36, seed=9, large=True),
)


def demo_properties(
    *, end: date | None = None, large_users: int = LARGE_DEMO_USERS
) -> list[PropertyData]:
    """Three stores in three time zones and currencies, served together by ``emulator serve``.

    Order values are drawn in dollars and priced in each store's currency at the fixed rates of
    ``currency``, so a currencyCode conversion back to USD lands near the generated amounts.
    ``large_users`` sizes the third (JPY) store: 1.5 million users over 36 months give about
    two million rows of the cohort_activity report.
    """
    properties = []
    for spec in DEMO_PROPERTIES:
        users = large_users if spec.large else spec.users
        data = generate_property(
            property_id=spec.property_id,
            seed=spec.seed,
            months=spec.months,
            users=users,
            end=end,
            time_zone=spec.time_zone,
            currency_code=spec.currency_code,
        )
        properties.append(replace(_priced(data), google_signals=spec.google_signals))
    return properties


def _priced(data: PropertyData) -> PropertyData:
    """``data`` with its dollar amounts turned into its own currency, rounded as it is paid."""
    rate = float(UNITS_PER_USD[data.currency_code])
    if rate == 1:
        return data
    activity = data.activity
    for name in ("purchase_revenue", "total_revenue"):
        index = activity.schema.get_field_index(name)
        amounts = activity.column(name).to_numpy() * rate
        priced = pa.array(np.round(amounts, minor_digits(data.currency_code)))
        activity = activity.set_column(index, name, priced)
    return replace(
        data, activity=activity, display_name=f"{data.display_name} ({data.currency_code})"
    )
