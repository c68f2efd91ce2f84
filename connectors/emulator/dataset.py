"""The two tables a served property is made of, whatever produced them.

Generated data and replayed BigQuery exports both end up here, so the report engine needs to
understand only this shape: one row per user with their first-session facts, and one row per
user and active date with additive activity counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

USER_STRING_COLUMNS = ("channel_group", "source", "medium", "campaign")
ACTIVITY_INT_COLUMNS = ("sessions", "screen_page_views", "transactions", "ecommerce_purchases")
ACTIVITY_FLOAT_COLUMNS = ("purchase_revenue", "total_revenue", "user_engagement_duration")

_REQUIRED_USERS = {
    "first_session_date": pa.date32(),
    **dict.fromkeys(USER_STRING_COLUMNS, pa.string()),
}
_REQUIRED_ACTIVITY = {
    "date": pa.date32(),
    **dict.fromkeys(ACTIVITY_INT_COLUMNS, pa.int64()),
    **dict.fromkeys(ACTIVITY_FLOAT_COLUMNS, pa.float64()),
    "engaged": pa.bool_(),
}
_PROPERTY_ID = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class PropertyData:
    """One GA4 property the emulator serves.

    ``users``: one row per user: ``user_key`` (int64 or string), ``first_session_date``
    (date32, in the property's time zone), ``channel_group``, ``source``, ``medium``,
    ``campaign`` (strings, ``(not set)`` rather than null). ``activity``: one row per user and
    date with activity: ``user_key``, ``date``, int64 ``sessions``, ``screen_page_views``,
    ``transactions``, ``ecommerce_purchases``, float64 ``purchase_revenue``, ``total_revenue``,
    ``user_engagement_duration`` (seconds) and bool ``engaged``. Other columns are ignored.
    ``google_signals``: the property has Google signals on, so GA may threshold user counts
    (see ``thresholds``).
    """

    property_id: str
    display_name: str
    time_zone: str
    currency_code: str
    users: pa.Table
    activity: pa.Table
    google_signals: bool = False

    def __post_init__(self) -> None:
        # Checked here so a hand-built property fails at construction, not inside a report.
        if not _PROPERTY_ID.match(self.property_id):
            raise ValueError(f"property_id must be digits only, got {self.property_id!r}")
        _check_columns("users", self.users, _REQUIRED_USERS)
        _check_columns("activity", self.activity, _REQUIRED_ACTIVITY)
        key_type = self.users.schema.field("user_key").type
        if key_type not in (pa.int64(), pa.string()):
            raise ValueError(f"users.user_key must be int64 or string, not {key_type}")
        if self.activity.schema.field("user_key").type != key_type:
            raise ValueError("activity.user_key must have the same type as users.user_key")
        for name in USER_STRING_COLUMNS:
            if self.users.column(name).null_count:
                raise ValueError(f"users.{name} has nulls; use '(not set)'")


def _check_columns(table_name: str, table: pa.Table, required: dict[str, pa.DataType]) -> None:
    names = set(table.schema.names)
    for name in ("user_key", *required):
        if name not in names:
            raise ValueError(f"{table_name} lacks column {name!r}")
    for name, expected in required.items():
        actual = table.schema.field(name).type
        if actual != expected:
            raise ValueError(f"{table_name}.{name} must be {expected}, not {actual}")
