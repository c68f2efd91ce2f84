"""The GA4 fields the emulator computes, as SQL over its ``facts`` table.

``facts`` holds one row per new-user fact (``new_users = 1`` on the first-session date) and one
per user and active date, each carrying the user's first-user attributes. Anything else in
``connectors.ga4_fields`` is a real GA field the emulator knows but does not compute.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.emulator.errors import invalid_argument, unimplemented
from connectors.ga4_fields import DEPRECATED_NAMES, STANDARD_FIELDS


@dataclass(frozen=True)
class DimensionSpec:
    """A computed dimension: a SQL expression over one ``facts`` row, rendered as GA does.

    ``key`` names a ``facts`` column whose values map one to one onto the dimension's texts,
    ``sql`` being ``template`` over it: reports group by the column and write the texts after,
    for far fewer rows.
    """

    api_name: str
    sql: str
    key: str | None = None
    template: str = "{}"


def _date_text(api_name: str, column: str) -> DimensionSpec:
    """A date as GA writes it, YYYYMMDD: one text per date."""
    template = "strftime({}, '%Y%m%d')"
    return DimensionSpec(api_name, template.format(column), column, template)


@dataclass(frozen=True)
class MetricSpec:
    """A computed metric: an aggregate over ``facts`` and which kinds of fact feed it."""

    api_name: str
    aggregate: str
    from_new_users: bool
    from_activity: bool

    @property
    def metric_type(self) -> str:
        return STANDARD_FIELDS[self.api_name].metric_type

    @property
    def is_decimal(self) -> bool:
        """Currency and seconds travel as decimal strings; counts as integers."""
        return self.metric_type != "TYPE_INTEGER"


def _dimensions(*specs: tuple[str, str] | DimensionSpec) -> dict[str, DimensionSpec]:
    built = [s if isinstance(s, DimensionSpec) else DimensionSpec(*s) for s in specs]
    return {spec.api_name: spec for spec in built}


DIMENSIONS = _dimensions(
    _date_text("date", "date"),
    ("yearMonth", "strftime(date, '%Y%m')"),
    ("year", "strftime(date, '%Y')"),
    ("month", "strftime(date, '%m')"),
    _date_text("firstSessionDate", "first_session_date"),
    ("firstUserDefaultChannelGroup", "channel_group"),
    ("firstUserSource", "source"),
    ("firstUserMedium", "medium"),
    ("firstUserCampaignName", "campaign"),
    # A user not attributed yet reads one placeholder here too, not two joined by a slash.
    (
        "firstUserSourceMedium",
        "if(source = '(data not available)', source, source || ' / ' || medium)",
    ),
)


def _activity_sum(api_name: str, column: str) -> MetricSpec:
    return MetricSpec(api_name, f"sum({column})", from_new_users=False, from_activity=True)


METRICS = {
    spec.api_name: spec
    for spec in (
        MetricSpec("newUsers", "sum(new_users)", from_new_users=True, from_activity=False),
        # Distinct users are counted per group, never summed over days.
        MetricSpec("totalUsers", "count(distinct user_key)", True, True),
        MetricSpec("activeUsers", "count(distinct user_key) filter (where engaged)", False, True),
        _activity_sum("sessions", "sessions"),
        _activity_sum("screenPageViews", "screen_page_views"),
        _activity_sum("transactions", "transactions"),
        _activity_sum("ecommercePurchases", "ecommerce_purchases"),
        _activity_sum("purchaseRevenue", "purchase_revenue"),
        _activity_sum("totalRevenue", "total_revenue"),
        _activity_sum("userEngagementDuration", "user_engagement_duration"),
    )
}


def resolve_field(name: str, kind: str) -> str:
    """The canonical name of a computed ``kind`` field, rejecting others as GA would.

    Deprecated aliases map to today's name. Names GA does not know, or knows as the other kind,
    are invalid; real GA fields the emulator does not compute are unimplemented.
    """
    canonical = DEPRECATED_NAMES.get(name, name)
    info = STANDARD_FIELDS.get(canonical)
    if info is None:
        raise invalid_argument(
            f"{name!r} is not a valid {kind} for this property; GetMetadata lists the valid names."
        )
    if info.kind != kind:
        raise invalid_argument(f"{name!r} is a {info.kind}, not a {kind}.")
    if not info.listed_2026:
        raise invalid_argument(f"The {kind} {name!r} is no longer offered by the Data API.")
    if canonical not in (DIMENSIONS if kind == "dimension" else METRICS):
        raise unimplemented(f"The emulator does not compute the GA4 {kind} {name!r} yet.")
    return canonical
