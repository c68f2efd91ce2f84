"""Copy the LTV marts into PostgreSQL, where Looker Studio can read them.

Every refresh loads the tables under temporary names and swaps them in within one transaction,
so a dashboard reading the schema sees the previous version or the new one, never half a copy
or a mix of both. Tables keep their identity across refreshes (their rows are replaced), so
views and grants that others build on them survive. (When a release changes a table's columns
it is replaced whole; a reader inside a REPEATABLE READ transaction that began before that
would see it empty, as with any table rewrite.) A read-only role, if configured, gets
``SELECT`` on exactly these tables.

The password (in ``GA_LTV_PG_PASSWORD`` or inside ``GA_LTV_PG_DSN``) is kept out of reprs,
logs and errors: psycopg's messages are scrubbed of it and re-raised without their chain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import stringprep
import time
import unicodedata
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from warehouse.connection import DEFAULT_LOCK_TIMEOUT_SECONDS, quote_qualified, reader
from warehouse.models import LTV_TABLES

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "ga_ltv"
_PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_LOADING_SUFFIX = "__loading"
_SCRAM_ITERATIONS = 4096
# DuckDB column type -> PostgreSQL column type; anything else is refused, not guessed.
_PG_TYPES = {
    "VARCHAR": "text",
    "DATE": "date",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}
_SWAP_RETRY_SECONDS = 0.05


class PublishError(RuntimeError):
    """Publishing failed; the message never contains a password."""


def _check_identifier(value: str, what: str) -> str:
    if not _PG_IDENTIFIER.fullmatch(value):
        raise PublishError(
            f"{what} must be a lower-case PostgreSQL name (letters, digits, _), got {value!r}"
        )
    return value


@dataclass(frozen=True)
class PostgresTarget:
    """Where to publish. Passwords are excluded from ``repr`` and never logged."""

    conninfo: str = field(repr=False)  # a libpq string or URI; may itself hold a password
    password: str | None = field(default=None, repr=False)
    schema: str = DEFAULT_SCHEMA
    reader_role: str | None = None
    reader_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_identifier(self.schema, "GA_LTV_PG_SCHEMA")
        if self.reader_role is not None:
            _check_identifier(self.reader_role, "GA_LTV_PG_READER_ROLE")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PostgresTarget | None:
        """From ``GA_LTV_PG_*``; None when neither a DSN nor a host is set."""
        env = os.environ if env is None else env
        dsn = env.get("GA_LTV_PG_DSN", "").strip()
        host = env.get("GA_LTV_PG_HOST", "").strip()
        if not dsn and not host:
            return None
        parts = {
            "host": host or None,
            "port": env.get("GA_LTV_PG_PORT") or None,
            "dbname": env.get("GA_LTV_PG_DB") or None,
            "user": env.get("GA_LTV_PG_USER") or None,
        }
        try:
            conninfo = make_conninfo(dsn, **{k: v for k, v in parts.items() if v})
        except psycopg.Error:
            conninfo = None  # libpq quotes the part it could not parse: maybe the password
        if conninfo is None:
            raise PublishError(
                "GA_LTV_PG_DSN with GA_LTV_PG_HOST/PORT/DB/USER is not a valid libpq "
                "connection string or URI (details withheld: it may hold a password)"
            )
        return cls(
            conninfo=conninfo,
            password=env.get("GA_LTV_PG_PASSWORD") or None,
            schema=env.get("GA_LTV_PG_SCHEMA") or DEFAULT_SCHEMA,
            reader_role=env.get("GA_LTV_PG_READER_ROLE") or None,
            reader_password=env.get("GA_LTV_PG_READER_PASSWORD") or None,
        )

    def describe(self) -> str:
        """``user@host:port/dbname`` for logs and metadata, without any password."""
        try:
            params = conninfo_to_dict(self.conninfo)
        except psycopg.Error:
            return "(unparseable connection string)"
        user = params.get("user") or "(default user)"
        host = params.get("host") or "(default host)"
        port = params.get("port") or "5432"
        return f"{user}@{host}:{port}/{params.get('dbname') or '(default db)'}"

    def secrets(self) -> list[str]:
        return [s for s in (self.password, _password_in(self.conninfo), self.reader_password) if s]


@dataclass(frozen=True)
class PublishResult:
    """What one publish did, safe to log and to put in Dagster metadata."""

    target: str
    schema: str
    rows: dict[str, int]
    reader_role: str | None
    seconds: float


def publish_to_postgres(
    db_path: str | os.PathLike[str],
    target: PostgresTarget,
    *,
    tables: Sequence[str] = tuple(LTV_TABLES),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    swap_timeout: float = 120.0,
) -> PublishResult:
    """Replace ``<schema>.<table>`` for every mart in one transaction; returns rows per table."""
    started = time.monotonic()
    marts = read_marts(db_path, tables, lock_timeout=lock_timeout)
    logger.info(
        "publishing %d tables (%d rows) to %s schema %s",
        len(marts),
        sum(t.num_rows for _, t in marts.values()),
        target.describe(),
        target.schema,
    )
    with _connect(target) as conn, _scrubbed(target), conn.transaction():
        schema = sql.Identifier(target.schema)
        conn.execute(
            "select pg_advisory_xact_lock(hashtext(%s))", [f"ga_ltv.publish:{target.schema}"]
        )
        conn.execute(sql.SQL("create schema if not exists {}").format(schema))
        if target.reader_role:
            _ensure_reader_role(conn, target)
        for table, (types, data) in marts.items():
            _load_table(conn, target, table, types, data)
        _swap(conn, target, list(marts), timeout=swap_timeout)
    rows = {table: data.num_rows for table, (_, data) in marts.items()}
    seconds = time.monotonic() - started
    for table, count in rows.items():
        logger.info("published %s.%s: %d rows", target.schema, table, count)
    logger.info("published to %s in %.1fs", target.describe(), seconds)
    return PublishResult(
        target=target.describe(),
        schema=target.schema,
        rows=rows,
        reader_role=target.reader_role,
        seconds=seconds,
    )


def read_marts(
    db_path: str | os.PathLike[str],
    tables: Sequence[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> dict[str, tuple[list[tuple[str, str]], pa.Table]]:
    """Each mart's (column, PostgreSQL type) list and rows, all from one DuckDB read session.

    Reading everything first releases the warehouse lock before the (slower) network copy.
    """
    marts: dict[str, tuple[list[tuple[str, str]], pa.Table]] = {}
    with reader(db_path, lock_timeout=lock_timeout) as con:
        for table in tables:
            source = quote_qualified(f"marts.{table}")
            columns = con.execute(f"describe {source}").fetchall()
            types = []
            for name, duck_type, *_ in columns:
                if duck_type not in _PG_TYPES:
                    raise PublishError(f"marts.{table}.{name}: no PostgreSQL type for {duck_type}")
                types.append((name, _PG_TYPES[duck_type]))
            marts[table] = (types, con.sql(f"select * from {source}").to_arrow_table())  # noqa: S608
    return marts


def _load_table(
    conn: psycopg.Connection,
    target: PostgresTarget,
    table: str,
    types: list[tuple[str, str]],
    data: pa.Table,
) -> None:
    """Create ``<table>__loading`` and COPY the rows into it (invisible until commit)."""
    loading = sql.Identifier(target.schema, table + _LOADING_SUFFIX)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))  # types from _PG_TYPES
        for name, pg_type in types
    )
    conn.execute(sql.SQL("drop table if exists {}").format(loading))
    conn.execute(sql.SQL("create table {} ({})").format(loading, columns))
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in types)
    # Arrow writes CSV in C, with text always quoted: an unquoted empty field is NULL to
    # PostgreSQL, a quoted one is ''. Doubles are written in shortest round-trip form.
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("copy {} ({}) from stdin (format csv)").format(loading, names)) as copy,
    ):
        for batch in data.to_batches(max_chunksize=50_000):
            buffer = io.BytesIO()
            pa_csv.write_csv(pa.Table.from_batches([batch]), buffer, options)
            copy.write(buffer.getbuffer())
    description = LTV_TABLES.get(table)
    if description:
        conn.execute(sql.SQL("comment on table {} is {}").format(loading, sql.Literal(description)))
    if target.reader_role:
        conn.execute(
            sql.SQL("grant select on {} to {}").format(loading, sql.Identifier(target.reader_role))
        )


def _swap(
    conn: psycopg.Connection, target: PostgresTarget, tables: list[str], *, timeout: float
) -> None:
    """Put the loaded tables in place of the published ones.

    A published table whose columns are unchanged is refilled in place (its rows deleted and
    the loaded ones inserted), so views, grants and comments others put on it survive (its
    description is set when it is created), and readers are never blocked. A table whose
    columns changed (a new release) is dropped and the loaded one renamed into place; a view
    on it then has to be re-created, and the error says which.
    """
    schema = target.schema
    existing = [
        table
        for (table,) in conn.execute(
            "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = any(%s)",
            [schema, tables],
        ).fetchall()
    ]
    refilled = [
        table
        for table in existing
        if _columns(conn, schema, table) == _columns(conn, schema, table + _LOADING_SUFFIX)
    ]
    dropped = [table for table in existing if table not in refilled]
    if dropped:
        _lock_for_drop(conn, schema, dropped, timeout=timeout)
    for table in tables:
        final = sql.Identifier(schema, table)
        loading = sql.Identifier(schema, table + _LOADING_SUFFIX)
        if table in refilled:
            conn.execute(sql.SQL("delete from {}").format(final))
            conn.execute(sql.SQL("insert into {} select * from {}").format(final, loading))
            conn.execute(sql.SQL("drop table {}").format(loading))
            if target.reader_role:
                conn.execute(
                    sql.SQL("grant select on {} to {}").format(
                        final, sql.Identifier(target.reader_role)
                    )
                )
            continue
        if table in dropped:
            views = _dependent_views(conn, schema, table)
            if views:
                raise PublishError(
                    f"{schema}.{table} has new columns in this version, so it is replaced "
                    f"whole, but {', '.join(views)} depend on it. Drop them, publish again, "
                    "then re-create them; the previous tables are still in place."
                )
            conn.execute(sql.SQL("drop table {}").format(final))
        conn.execute(sql.SQL("alter table {} rename to {}").format(loading, sql.Identifier(table)))
    logger.info(
        "swapped in %s: %d refilled in place, %d replaced whole",
        schema, len(refilled), len(tables) - len(refilled),
    )  # fmt: skip


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """A table's (column, type) list in order."""
    return [
        (str(name), str(kind))
        for name, kind in conn.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute as a"
            " join pg_class as c on c.oid = a.attrelid"
            " join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped"
            " order by a.attnum",
            [schema, table],
        ).fetchall()
    ]


def _dependent_views(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """Views (and materialized views) built on ``schema.table``, qualified."""
    return [
        str(name)
        for (name,) in conn.execute(
            "select distinct quote_ident(vn.nspname) || '.' || quote_ident(v.relname)"
            " from pg_depend as d"
            " join pg_rewrite as r on r.oid = d.objid"
            " join pg_class as v on v.oid = r.ev_class"
            " join pg_namespace as vn on vn.oid = v.relnamespace"
            " join pg_class as t on t.oid = d.refobjid"
            " join pg_namespace as tn on tn.oid = t.relnamespace"
            " where tn.nspname = %s and t.relname = %s and v.oid <> t.oid"
            " order by 1",
            [schema, table],
        ).fetchall()
    ]


def _lock_for_drop(
    conn: psycopg.Connection, schema: str, tables: list[str], *, timeout: float
) -> None:
    """Take the tables to be dropped all at once without waiting (NOWAIT, retried): waiting on
    one while holding another could deadlock with a reader that reads them in another order."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("lock table {} in access exclusive mode nowait").format(
                        sql.SQL(", ").join(
                            sql.Identifier(schema, table) for table in sorted(tables)
                        )
                    )
                )
                break
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() >= deadline:
                raise PublishError(
                    f"readers kept {schema}'s tables busy for {timeout:.0f}s; "
                    "the previous version is still in place"
                ) from None
            time.sleep(_SWAP_RETRY_SECONDS)
    if attempts > 1:
        logger.info("swap waited for readers: %d attempts", attempts)


def _ensure_reader_role(conn: psycopg.Connection, target: PostgresTarget) -> None:
    """Create the read-only role, or check an existing one holds no powers beyond reading."""
    role = sql.Identifier(target.reader_role or "")
    row = conn.execute(
        "select rolsuper or rolcreaterole or rolcreatedb or rolbypassrls or rolreplication"
        "  from pg_roles where rolname = %s",
        [target.reader_role],
    ).fetchone()
    login = (
        sql.SQL("login password {}").format(sql.Literal(scram_verifier(target.reader_password)))
        if target.reader_password
        else None
    )
    if row is None:
        conn.execute(sql.SQL("create role {} {}").format(role, login or sql.SQL("nologin")))
        logger.info("created read-only role %s", target.reader_role)
    elif row[0]:
        raise PublishError(
            f"role {target.reader_role} exists with more than read rights (superuser, "
            "createrole, createdb, bypassrls or replication); choose another reader role"
        )
    elif login is not None:
        conn.execute(sql.SQL("alter role {} {}").format(role, login))
    schema = sql.Identifier(target.schema)
    conn.execute(sql.SQL("revoke all on schema {} from {}").format(schema, role))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(schema, role))
    # Tables this publisher creates later in the schema are readable too.
    conn.execute(
        sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
            schema, role
        )
    )


def scram_verifier(password: str | None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802 / 7677).

    Sending the verifier instead of the password keeps the plain text out of the server's
    statement log, which records a failed ``alter role ... password`` verbatim.
    """
    normalized = _saslprep(password or "")
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,  # unassigned code points
)


def _saslprep(password: str) -> bytes:
    """The bytes PostgreSQL's SCRAM derives keys from: the SASLprep form (RFC 4013) of the
    password, or, as PostgreSQL does when SASLprep refuses the password, its raw UTF-8."""
    raw = password.encode("utf-8")
    if password.isascii():
        return raw
    # Non-ASCII spaces become a space, first: U+200B is in both tables, and a space wins.
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if stringprep.in_table_c12(char) or not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(check(char) for char in prepared for check in _PROHIBITED):
        return raw
    if any(stringprep.in_table_d1(char) for char in prepared) and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        return raw  # right-to-left text mixed with left-to-right
    return prepared.encode("utf-8")


@contextmanager
def _connect(target: PostgresTarget) -> Iterator[psycopg.Connection]:
    """A connection whose failures name the server but never the password."""
    kwargs: dict[str, object] = {"connect_timeout": 10, "application_name": "ga-ltv publisher"}
    if target.password:
        kwargs["password"] = target.password
    try:
        conn = psycopg.connect(target.conninfo, **kwargs)
    except psycopg.Error as exc:
        message = _scrub(str(exc), target.secrets())
    else:
        with conn:
            yield conn
        return
    raise PublishError(f"could not connect to PostgreSQL {target.describe()}: {message}")


@contextmanager
def _scrubbed(target: PostgresTarget) -> Iterator[None]:
    """Turn a database error into a PublishError without the password or the original chain."""
    message = None
    try:
        yield
    except psycopg.Error as exc:
        kind = type(exc).__name__
        message = f"publishing to {target.describe()} failed ({kind}): " + _scrub(
            str(exc), target.secrets()
        )
    if message is not None:
        raise PublishError(message)


def _password_in(conninfo: str) -> str:
    if not conninfo:
        return ""
    try:
        return conninfo_to_dict(conninfo).get("password") or ""
    except psycopg.Error:
        return ""


def _scrub(text: str, secret_values: Sequence[str]) -> str:
    """``text`` with each secret, and its URL-encoded forms, replaced by ``***``."""
    for secret in secret_values:
        if not secret:
            continue
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret)}:
            text = text.replace(form, "***")
    return text
