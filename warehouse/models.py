"""Rebuild the staging and marts LTV tables from the raw GA tables.

Everything is rebuilt in one transaction under the writer lock: the new tables replace the old
ones only at commit, so a reader sees either the previous build or this one, never a mix.
"""

from __future__ import annotations

import logging
import os

import duckdb

from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    quote_identifier,
    quote_qualified,
    rollback,
    writer,
)
from warehouse.schema import apply_migrations
from warehouse.sql_files import read_sql

logger = logging.getLogger(__name__)

# Models in dependency order: (table, SQL file that creates it).
_MODELS = (
    ("staging.first_user_facts", "staging/first_user_facts.sql"),
    ("staging.cohort_sizes", "staging/cohort_sizes.sql"),
    ("staging.cohort_activity", "staging/cohort_activity.sql"),
    ("marts.ltv_monthly", "marts/ltv_monthly.sql"),
    ("marts.ltv_summary", "marts/ltv_summary.sql"),
)

# ltv_monthly.dimension -> the value column of its own mart (marts.ltv_by_<dimension>).
DIMENSIONS = ("channel", "source", "medium", "campaign")

_PER_USER = "per user, cumulative from acquisition"
_BY_DIMENSION = (
    "LTV of users acquired in a month by their first-user {0}: revenue and cumulative revenue "
    "per month since acquisition, LTV = cumulative revenue / acquired users, and transactions, "
    "sessions, page views and engagement seconds " + _PER_USER + "."
)

# The marts the pipeline publishes (name in schema ``marts`` -> description).
LTV_TABLES: dict[str, str] = {
    "ltv_monthly": (
        "LTV for all four first-user dimensions stacked (dimension, dimension_value): one "
        "table for one Looker Studio data source."
    ),
    **{
        f"ltv_by_{dimension}": _BY_DIMENSION.format(
            "campaign name" if dimension == "campaign" else dimension
        )
        for dimension in DIMENSIONS
    },
    "ltv_summary": (
        "Per first-user dimension value: acquired users and LTV at 1, 3, 6 and 12 months, each "
        "weighted over the cohorts that reached that age, with how many cohorts that is."
    ),
}


def build_ltv_tables(
    db_path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> dict[str, int]:
    """Rebuild staging and marts; returns the row count of each mart, keyed as ``LTV_TABLES``."""
    counts: dict[str, int] = {}
    with writer(db_path, lock_timeout=lock_timeout) as con:
        apply_migrations(con)
        con.execute("begin transaction")
        try:
            for table, sql_file in _MODELS:
                con.execute(read_sql(sql_file))
                counts[table] = _row_count(con, table)
            template = read_sql("marts/ltv_by_dimension.sql")
            for dimension in DIMENSIONS:
                table = f"ltv_by_{dimension}"
                sql = template.format(
                    table=quote_identifier(table), value_column=quote_identifier(dimension)
                )
                con.execute(sql, {"dimension": dimension})
                counts[f"marts.{table}"] = _row_count(con, f"marts.{table}")
            con.execute("commit")
        except BaseException:
            rollback(con)
            raise
        _warn_on_mixed_currencies(con)
    for table, rows in counts.items():
        logger.info("built %s: %d rows", table, rows)
    return {table: counts[f"marts.{table}"] for table in LTV_TABLES}


def _row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    # The table name comes from this module and is validated and quoted.
    row = con.execute(f"select count(*) from {quote_qualified(table)}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _warn_on_mixed_currencies(con: duckdb.DuckDBPyConnection) -> None:
    """Cumulative revenue across a change of the property's currency adds unlike amounts."""
    rows = con.execute(
        "select property_id, string_agg(distinct currency_code, ', ' order by currency_code)\n"
        "  from raw.ga_loads\n"
        " group by property_id\n"
        "having count(distinct currency_code) > 1"
    ).fetchall()
    for property_id, currencies in rows:
        logger.warning(
            "property %s was loaded in several currencies (%s); its cumulative revenue mixes them",
            property_id,
            currencies,
        )
