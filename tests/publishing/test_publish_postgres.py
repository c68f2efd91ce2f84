"""Publishing to a real PostgreSQL server on loopback: types, counts, atomic swaps, the reader
role's limits, and a password that never shows up anywhere."""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path

import psycopg
import pytest

from tests.publishing.conftest import FAKE_PASSWORD, SCRIPT_CAMPAIGN, PgDatabase
from warehouse.connection import reader
from warehouse.models import LTV_TABLES
from warehouse.publish_postgres import (
    PostgresTarget,
    PublishError,
    publish_to_postgres,
    scram_verifier,
)

READER_PASSWORD = "Fake-Reader-Pass-Okapi-3310"
# Every table's row count and exact integer total, in one statement: one snapshot. Table names
# come from LTV_TABLES.
_PARTS = [
    f"(select {aggregate} from ga_ltv.{t})"  # noqa: S608
    for t in LTV_TABLES
    for aggregate in ("count(*)", "sum(acquired_users)")
]
_FINGERPRINT = "select " + ", ".join(_PARTS)


def _target(pg: PgDatabase, **extra: str) -> PostgresTarget:
    target = PostgresTarget.from_env(pg.env(**extra))
    assert target is not None
    return target


def _duckdb_fingerprint(db: Path) -> tuple[int, ...]:
    with reader(db) as con:
        query = _FINGERPRINT.replace("ga_ltv.", "marts.")
        row = con.execute(query).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def test_tables_arrive_with_types_and_rows(warehouse_v1: Path, pg: PgDatabase) -> None:
    result = publish_to_postgres(warehouse_v1, _target(pg))
    assert set(result.rows) == set(LTV_TABLES)
    with pg.connect() as conn:
        for table, rows in result.rows.items():
            (count,) = conn.execute(f"select count(*) from ga_ltv.{table}").fetchone()  # noqa: S608
            assert count == rows > 0
        types = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'ga_ltv' and table_name = 'ltv_monthly'"
            ).fetchall()
        )
        summary = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'ga_ltv' and table_name = 'ltv_summary'"
            ).fetchall()
        )
        campaigns = {
            r[0] for r in conn.execute("select campaign from ga_ltv.ltv_by_campaign").fetchall()
        }
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'ga_ltv'"
            ).fetchall()
        }
    assert types == {
        "property_id": "text",
        "cohort_month": "date",
        "dimension": "text",
        "dimension_value": "text",
        "months_since_acquisition": "integer",
        "activity_month": "date",
        "acquired_users": "bigint",
        "revenue": "double precision",
        "cumulative_revenue": "double precision",
        "ltv": "double precision",
        "currency_code": "text",
        "transactions_per_user": "double precision",
        "sessions_per_user": "double precision",
        "page_views_per_user": "double precision",
        "engagement_seconds_per_user": "double precision",
    }
    assert summary["ltv_12m"] == "double precision"
    assert summary["cohorts_12m"] == "integer"
    assert SCRIPT_CAMPAIGN in campaigns
    assert tables == set(LTV_TABLES)  # no leftover loading tables
    with pg.connect() as conn:
        exact = conn.execute(_FINGERPRINT).fetchone()
    assert tuple(int(v) for v in exact) == _duckdb_fingerprint(warehouse_v1)
    for table in ("ltv_by_campaign", "ltv_summary"):  # NULLs, '', floats and text exactly
        with pg.connect() as conn:
            published = conn.execute(f"select * from ga_ltv.{table}").fetchall()  # noqa: S608
        with reader(warehouse_v1) as con:
            expected = con.execute(f"select * from marts.{table}").fetchall()  # noqa: S608
        assert sorted(published, key=repr) == sorted(expected, key=repr)


def test_refresh_swaps_atomically_under_a_reader(
    warehouse_v1: Path, warehouse_v2: Path, pg: PgDatabase
) -> None:
    """A reader polling all six tables in one statement sees version 1 or version 2, whole."""
    versions = {_duckdb_fingerprint(warehouse_v1), _duckdb_fingerprint(warehouse_v2)}
    assert len(versions) == 2
    target = _target(pg)
    publish_to_postgres(warehouse_v1, target)
    seen: list[tuple[int, ...]] = []
    errors: list[str] = []
    started = threading.Event()
    stop = threading.Event()

    def poll() -> None:
        with pg.connect() as conn:
            while not stop.is_set():
                try:
                    row = conn.execute(_FINGERPRINT).fetchone()
                except psycopg.Error as exc:
                    errors.append(str(exc))
                    continue
                seen.append(tuple(int(v) for v in row))
                started.set()

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert started.wait(10)
        for round_ in range(6):
            publish_to_postgres(warehouse_v2 if round_ % 2 == 0 else warehouse_v1, target)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert set(seen) <= versions, "a reader saw a mix of two versions"
    assert set(seen) == versions  # it did read across the swaps
    with pg.connect() as conn:
        assert tuple(int(v) for v in conn.execute(_FINGERPRINT).fetchone()) == (
            _duckdb_fingerprint(warehouse_v1)
        )


def test_views_and_grants_built_on_published_tables_survive_a_refresh(
    warehouse_v1: Path, warehouse_v2: Path, pg: PgDatabase
) -> None:
    """Analysts build views for their dashboards and DBAs grant other roles; a refresh keeps
    both, and the view shows the new rows."""
    target = _target(pg)
    publish_to_postgres(warehouse_v1, target)
    with pg.connect() as conn:
        conn.execute(
            "create view public.channel_ltv as select channel, months_since_acquisition, ltv"
            " from ga_ltv.ltv_by_channel"
        )
        conn.execute(f"create role {pg.reader_role}")
        conn.execute(f"grant select on ga_ltv.ltv_summary to {pg.reader_role}")
        conn.execute("comment on table ga_ltv.ltv_summary is 'Board deck source'")
        before = conn.execute("select count(*) from public.channel_ltv").fetchone()
    publish_to_postgres(warehouse_v2, target)
    with pg.connect() as conn:
        after = conn.execute("select count(*) from public.channel_ltv").fetchone()
        expected = conn.execute("select count(*) from ga_ltv.ltv_by_channel").fetchone()
        granted = conn.execute(
            "select has_table_privilege(%s, 'ga_ltv.ltv_summary', 'select')", [pg.reader_role]
        ).fetchone()
        comment = conn.execute("select obj_description('ga_ltv.ltv_summary'::regclass)").fetchone()
        leftovers = conn.execute(
            "select count(*) from pg_tables where schemaname = 'ga_ltv'"
            " and tablename like '%%__loading'"
        ).fetchone()
    assert after == expected and before != after, "the view reads the refreshed rows"
    assert granted == (True,)
    assert comment == ("Board deck source",)
    assert leftovers == (0,)
    assert tuple(int(v) for v in _fingerprint(pg)) == _duckdb_fingerprint(warehouse_v2)


def test_a_table_whose_columns_changed_is_replaced_unless_a_view_needs_it(
    warehouse_v1: Path, warehouse_v2: Path, pg: PgDatabase
) -> None:
    """A release that changes a table's columns replaces the table whole. A view on it would be
    dropped silently with CASCADE; instead the publish stops, names the view, changes nothing."""
    target = _target(pg)
    publish_to_postgres(warehouse_v1, target)
    with pg.connect() as conn:
        conn.execute("alter table ga_ltv.ltv_summary add column retired_column int")
        conn.execute("create view public.summary_copy as select * from ga_ltv.ltv_summary")
    with pytest.raises(PublishError, match=r"public\.summary_copy depend on it"):
        publish_to_postgres(warehouse_v2, target)
    assert tuple(int(v) for v in _fingerprint(pg)) == _duckdb_fingerprint(warehouse_v1)
    with pg.connect() as conn:
        conn.execute("drop view public.summary_copy")
    publish_to_postgres(warehouse_v2, target)
    assert tuple(int(v) for v in _fingerprint(pg)) == _duckdb_fingerprint(warehouse_v2)
    with pg.connect() as conn:
        columns = conn.execute(
            "select count(*) from information_schema.columns"
            " where table_schema = 'ga_ltv' and column_name = 'retired_column'"
        ).fetchone()
    assert columns == (0,)


def _fingerprint(pg: PgDatabase) -> tuple[int, ...]:
    with pg.connect() as conn:
        row = conn.execute(_FINGERPRINT).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def test_reader_role_can_select_and_nothing_else(
    warehouse_v1: Path, warehouse_v2: Path, pg: PgDatabase
) -> None:
    target = _target(
        pg, GA_LTV_PG_READER_ROLE=pg.reader_role, GA_LTV_PG_READER_PASSWORD=READER_PASSWORD
    )
    publish_to_postgres(warehouse_v1, target)
    publish_to_postgres(warehouse_v2, target)  # swapped tables keep the grant
    with pg.connect(user=pg.reader_role, password=READER_PASSWORD) as conn:
        for table in LTV_TABLES:
            conn.execute(f"select count(*) from ga_ltv.{table}").fetchone()  # noqa: S608
        forbidden = [
            "insert into ga_ltv.ltv_summary (property_id) values ('x')",
            "update ga_ltv.ltv_monthly set ltv = 0",
            "delete from ga_ltv.ltv_by_channel",
            "truncate ga_ltv.ltv_by_source",
            "drop table ga_ltv.ltv_by_medium",
            "alter table ga_ltv.ltv_by_campaign add column x int",
            "create table ga_ltv.mine (x int)",
            "create table public.mine (x int)",
            "create schema mine",
        ]
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with pg.connect() as conn:
        role = conn.execute(
            "select rolsuper, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles"
            " where rolname = %s",
            [pg.reader_role],
        ).fetchone()
    assert role == (False, False, False, True)


def test_existing_powerful_role_is_refused(warehouse_v1: Path, pg: PgDatabase) -> None:
    with pg.connect() as conn:
        conn.execute(f"create role {pg.reader_role} createdb")
    with pytest.raises(PublishError, match="more than read rights"):
        publish_to_postgres(warehouse_v1, _target(pg, GA_LTV_PG_READER_ROLE=pg.reader_role))


def test_scram_verifier_is_what_postgres_accepts(pg: PgDatabase) -> None:
    """The reader password is sent as a verifier; logging in with the plain text works."""
    verifier = scram_verifier(READER_PASSWORD)
    assert READER_PASSWORD not in verifier and verifier.startswith("SCRAM-SHA-256$4096:")
    with pg.connect() as conn:
        conn.execute(f"create role {pg.reader_role} login password '{verifier}'")
    with pg.connect(user=pg.reader_role, password=READER_PASSWORD) as conn:
        assert conn.execute("select current_user").fetchone() == (pg.reader_role,)
    with pytest.raises(psycopg.OperationalError):
        pg.connect(user=pg.reader_role, password=READER_PASSWORD + "x")


# Passwords SASLprep (RFC 4013) maps, normalizes or refuses. libpq prepares the password it logs
# in with the same way, so each login below fails unless the verifier was built from the bytes
# PostgreSQL expects. Most hold "ﬁ", which NFKC alone would turn into "fi".
SASLPREP_PASSWORDS = {
    "ascii-kept-as-is": "plain-Pass-1",
    "ligature-normalized": "\ufb01le-\u00e9",
    "combining-accent": "\ufb01e\u0301",
    "ideographic-space-to-space": "\ufb01\u3000x",
    "zero-width-space-to-space": "\ufb01\u200bx",
    "soft-hyphen-to-nothing": "\ufb01\u00adx",
    "only-mapped-to-nothing": "\u00ad\u00ad",
    "private-use-refused": "\ufb01\ue000",
    "c1-control-refused": "\ufb01\u0085",
    "unassigned-in-unicode-3.2-refused": "\ufb01\U0001f600",
    "right-to-left-alone": "\u05e9\u05dc\u05d5\u05dd",
    "right-to-left-mixed-refused": "\u05e9\ufb01",
    "arabic-with-digits": "\u0627\u0661\u0628",
}


@pytest.mark.parametrize("password", SASLPREP_PASSWORDS.values(), ids=SASLPREP_PASSWORDS.keys())
def test_scram_verifier_follows_saslprep_as_postgres_does(pg: PgDatabase, password: str) -> None:
    with pg.connect() as conn:
        conn.execute(f"create role {pg.reader_role} login password '{scram_verifier(password)}'")
    with pg.connect(user=pg.reader_role, password=password) as conn:
        assert conn.execute("select current_user").fetchone() == (pg.reader_role,)


def _assert_secret_free(*texts: str) -> None:
    for text in texts:
        for secret in (FAKE_PASSWORD, READER_PASSWORD):
            assert secret not in text


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"GA_LTV_PG_PASSWORD": FAKE_PASSWORD + "-wrong"}, id="wrong-password"),
        pytest.param({"GA_LTV_PG_PORT": "1"}, id="nothing-listening"),
        pytest.param(
            {"GA_LTV_PG_DB": "no_such_db", "GA_LTV_PG_READER_PASSWORD": READER_PASSWORD},
            id="no-database",
        ),
    ],
)
def test_password_stays_out_of_errors_and_logs(
    warehouse_v1: Path, pg: PgDatabase, caplog: pytest.LogCaptureFixture, env: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = pg.env(GA_LTV_PG_READER_ROLE=pg.reader_role) | env
    target = PostgresTarget.from_env(settings)
    assert target is not None
    with pytest.raises(PublishError) as error:
        publish_to_postgres(warehouse_v1, target)
    formatted = "".join(traceback.format_exception(error.value))
    assert "could not connect" in str(error.value)
    assert error.value.__cause__ is None and error.value.__context__ is None
    _assert_secret_free(formatted, caplog.text, repr(target))
    # The wrong password itself is a secret too.
    assert FAKE_PASSWORD[:12] not in formatted


def test_password_in_the_dsn_stays_out_too(
    warehouse_v1: Path, pg: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://{pg.user}:{FAKE_PASSWORD}@{pg.host}:{pg.port}/{pg.dbname}"
    target = PostgresTarget.from_env({"GA_LTV_PG_DSN": url})
    assert target is not None
    result = publish_to_postgres(warehouse_v1, target)
    assert result.rows["ltv_summary"] > 0
    refused = PostgresTarget.from_env({"GA_LTV_PG_DSN": url.replace(f":{pg.port}/", ":1/")})
    assert refused is not None
    with pytest.raises(PublishError) as error:
        publish_to_postgres(warehouse_v1, refused)
    with pytest.raises(PublishError) as malformed:
        PostgresTarget.from_env({"GA_LTV_PG_DSN": f"host=x password={FAKE_PASSWORD} bogus"})
    _assert_secret_free(
        caplog.text,
        repr(target),
        repr(result),
        target.describe(),
        "".join(traceback.format_exception(error.value)),
        "".join(traceback.format_exception(malformed.value)),
    )


def test_not_configured_and_bad_names() -> None:
    assert PostgresTarget.from_env({}) is None
    with pytest.raises(PublishError, match="GA_LTV_PG_SCHEMA"):
        PostgresTarget.from_env({"GA_LTV_PG_HOST": "127.0.0.1", "GA_LTV_PG_SCHEMA": 'x"; drop'})
    with pytest.raises(PublishError, match="GA_LTV_PG_READER_ROLE"):
        PostgresTarget.from_env({"GA_LTV_PG_HOST": "h", "GA_LTV_PG_READER_ROLE": "Robert'); --"})
