"""Fixtures for the publishing tests: small warehouses built once per session.

Two versions of the same warehouse differ in rows and revenue, so a reader can tell which one
it saw; both hold the dimension values most likely to break a CSV file, an HTML page or SQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.publishing import services
from tests.warehouse.spool import acquisition_row, activity_row, land_acquisition, land_activity
from tests.warehouse.test_loads import HOSTILE
from warehouse.models import build_ltv_tables

SCRIPT_CAMPAIGN = '<script>alert("ga-ltv")</script>'
# Values a CSV writer or an HTML template gets wrong first, on top of the warehouse's list.
NASTY = [
    *HOSTILE,
    SCRIPT_CAMPAIGN,
    'comma, "quote", semicolon; done',
    "crlf\r\nline",
    "</td></tr><img src=x onerror=alert(1)>",
    "مرحبا بالعالم 🎉",
]
CHANNELS = ["Organic Search", "Email", "Paid Search", "Direct"]
# Recognisable, so a test can search captured output for it.
FAKE_PASSWORD = "Fake-PG-Pass-Zebra-7741"
# Revenue that does not survive a careless float format.
AMOUNTS = [0.1, 1 / 3, 1e-7, 123_456_789.123_456_79, 19.99]


def build_warehouse(db: Path, spool: Path, *, months: int) -> Path:
    """A property with ``months`` cohorts (January on), four channels and every nasty value
    as a campaign, activity every month; more months means more rows and more revenue."""
    firsts = [date(2024, m, 1) for m in range(1, months + 1)]
    for index, month in enumerate(firsts):
        day = month.replace(day=2)
        rows = [acquisition_row(day, 10 + 5 * i + index, c) for i, c in enumerate(CHANNELS)]
        rows += [
            acquisition_row(day, 1 + i, "Referral", source=v, medium=v, campaign=v)
            for i, v in enumerate(NASTY)
        ]
        land_acquisition(db, spool, month, rows)
    for index, month in enumerate(firsts):
        rows = []
        for cohort in firsts[: index + 1]:
            seen = month.replace(day=3)
            first = cohort.replace(day=2)
            rows += [
                activity_row(seen, first, AMOUNTS[(i + index) % len(AMOUNTS)] * (i + 1), c)
                for i, c in enumerate(CHANNELS)
            ]
            rows += [
                activity_row(seen, first, 2.5, "Referral", source=v, medium=v, campaign=v)
                for v in NASTY[:: 1 + index]
            ]
        land_activity(db, spool, month, rows)
    build_ltv_tables(db)
    return db


@pytest.fixture(scope="session")
def warehouse_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months loaded."""
    folder = tmp_path_factory.mktemp("warehouse_v1")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=3)


@pytest.fixture(scope="session")
def warehouse_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same property a month later: four months loaded."""
    folder = tmp_path_factory.mktemp("warehouse_v2")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=4)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """A superuser DSN: CI's server (GA_LTV_TEST_PG_DSN) or one started for this session."""
    # Session fixtures run before the autouse fixture that clears GA_LTV_* for each test.
    dsn = os.environ.get(services.PG_DSN_ENV)
    if dsn:
        yield dsn
        return
    bin_dir = services.find_pg_bin()
    if bin_dir is None:
        services.missing("PostgreSQL (initdb, pg_ctl)", "apt-get install -y postgresql")
        return
    with services.local_postgres(bin_dir) as started:
        yield started


@dataclass(frozen=True)
class PgDatabase:
    """A fresh database owned by a non-superuser publisher role, plus a reader role name."""

    admin_dsn: str
    host: str
    port: str
    dbname: str
    user: str
    password: str
    reader_role: str

    def env(self, **extra: str) -> dict[str, str]:
        """The publisher's GA_LTV_PG_* settings."""
        return {
            "GA_LTV_PG_HOST": self.host,
            "GA_LTV_PG_PORT": self.port,
            "GA_LTV_PG_DB": self.dbname,
            "GA_LTV_PG_USER": self.user,
            "GA_LTV_PG_PASSWORD": self.password,
            **extra,
        }

    def connect(self, **kwargs: str) -> psycopg.Connection:
        """A connection to this database, as the admin unless user/password are given."""
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn) | {"dbname": self.dbname}
        return psycopg.connect(**(params | kwargs), autocommit=True)


@pytest.fixture
def pg(pg_admin_dsn: str) -> Iterator[PgDatabase]:
    token = secrets.token_hex(4)
    dbname, user, reader = f"ga_ltv_test_{token}", f"ga_ltv_pub_{token}", f"ga_ltv_ro_{token}"
    params = psycopg.conninfo.conninfo_to_dict(pg_admin_dsn)
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create role {} login createrole password {}").format(
                sql.Identifier(user), sql.Literal(FAKE_PASSWORD)
            )
        )
        admin.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(dbname), sql.Identifier(user)
            )
        )
    try:
        yield PgDatabase(
            admin_dsn=pg_admin_dsn,
            host=str(params.get("host", "127.0.0.1")),
            port=str(params.get("port", "5432")),
            dbname=dbname,
            user=user,
            password=FAKE_PASSWORD,
            reader_role=reader,
        )
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )
            for role in (reader, user):
                admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
