"""CSV and Parquet copies of the LTV marts, for tools that cannot read DuckDB.

Each refresh writes a folder named for the last loaded month (``YYYY-MM``) and replaces
``latest`` with the same files. A folder is always filled under a temporary name and then
swapped in whole, so someone picking up ``latest`` (a Looker Studio upload, a sync client)
never finds half a refresh. A replaced folder is kept aside for a while rather than deleted,
so a reader already inside it finishes reading a whole version. The files hold customer
revenue: 0600 files in 0700 folders.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    quote_identifier,
    quote_qualified,
    reader,
)
from warehouse.models import LTV_TABLES

logger = logging.getLogger(__name__)

LATEST = "latest"
FORMATS = ("csv", "parquet")
_TMP_PREFIX = ".tmp-"
_RETIRED_PREFIX = ".retired-"
# How long a replaced folder stays readable; extracts are small, so a reader takes seconds.
RETIRED_GRACE_SECONDS = 15 * 60
_RENAME_EXCHANGE = 2  # linux/fs.h


@dataclass(frozen=True)
class ExtractsResult:
    """What one refresh wrote: the month folder, ``latest``, and rows per table."""

    month: str
    folder: Path
    latest: Path
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir())


class NothingToExtract(RuntimeError):
    """The marts are empty, so there is no month to name the folder after."""


def last_loaded_month(con: duckdb.DuckDBPyConnection) -> str | None:
    """``YYYY-MM`` of the newest activity month in the marts, or None before the first build."""
    row = con.execute("select strftime(max(activity_month), '%Y-%m') from marts.ltv_monthly")
    value = row.fetchone()
    return value[0] if value else None


def write_extracts(
    db_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    tables: Sequence[str] = tuple(LTV_TABLES),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> ExtractsResult:
    """Write every table as CSV and Parquet into ``root/<month>/`` and ``root/latest/``."""
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _root_lock(root_path):
        _sweep(root_path, now=time.time())
        staging = _new_private_dir(root_path)
        try:
            # One reader session: every file comes from the same build of the marts.
            with reader(db_path, lock_timeout=lock_timeout) as con:
                month = last_loaded_month(con)
                if month is None:
                    raise NothingToExtract("marts.ltv_monthly is empty: no LTV tables to extract")
                rows = {table: _write_table(con, table, staging) for table in tables}
            latest_staging = _new_private_dir(root_path)
            try:
                _link_files(staging, latest_staging)
                month_folder = _swap_in(staging, root_path / month)
                latest = _swap_in(latest_staging, root_path / LATEST)
            finally:
                shutil.rmtree(latest_staging, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for table, count in rows.items():
        logger.info("extracted %s: %d rows to %s (csv, parquet)", table, count, month_folder)
    return ExtractsResult(month=month, folder=month_folder, latest=latest, rows=rows)


def _write_table(con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> int:
    """COPY one mart to ``<table>.csv`` and ``<table>.parquet``; returns its row count."""
    source = quote_qualified(f"marts.{table}")
    columns = con.execute(f"describe {source}").fetchall()
    # Quoting every text column keeps NULL (an empty field) apart from '' (a quoted empty
    # field), and shields values with ';' from tools that guess the delimiter.
    text_columns = [name for name, kind, *_ in columns if kind == "VARCHAR"]
    force_quote = f", force_quote ({', '.join(map(quote_identifier, text_columns))})"
    csv_path = folder / f"{table}.csv"
    parquet_path = folder / f"{table}.parquet"
    # Identifiers come from LTV_TABLES and DuckDB's own column names, validated and quoted;
    # the file names are parameters.
    con.execute(
        f"copy (select * from {source}) to $path "  # noqa: S608
        "(format csv, header, delimiter ',', quote '\"', escape '\"', "
        f"new_line '\\r\\n', dateformat '%Y-%m-%d'{force_quote if text_columns else ''})",
        {"path": str(csv_path)},
    )
    con.execute(
        f"copy (select * from {source}) to $path (format parquet, compression zstd)",  # noqa: S608
        {"path": str(parquet_path)},
    )
    for path in (csv_path, parquet_path):
        path.chmod(0o600)
    row = con.execute(f"select count(*) from {source}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _new_private_dir(root: Path) -> Path:
    path = root / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    path.mkdir(mode=0o700)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask; make sure of it
    return path


def _link_files(source: Path, target: Path) -> None:
    """Hard links: files are never rewritten in place, so both folders can share them."""
    for item in source.iterdir():
        try:
            os.link(item, target / item.name)
        except OSError:
            shutil.copy2(item, target / item.name)


def _swap_in(staging: Path, target: Path) -> Path:
    """Put the filled ``staging`` folder at ``target`` and retire the previous one, if any.

    On Linux the two are exchanged in one ``renameat2`` call, so ``target`` never goes
    missing; elsewhere the old folder is renamed aside first, leaving a moment without it.
    """
    if not target.exists():
        staging.rename(target)
        return target
    retired = target.with_name(f"{_RETIRED_PREFIX}{time.time_ns()}-{uuid.uuid4().hex}")
    if _exchange(staging, target):
        staging.rename(retired)
    else:
        target.rename(retired)
        staging.rename(target)
    return target


def _sweep(root: Path, *, now: float) -> None:
    """Remove what no reader can still be using: folders retired longer than the grace time,
    and temporary folders, which only a writer holding the lock (a killed one) leaves."""
    for path in root.iterdir():
        if path.name.startswith(_TMP_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(_RETIRED_PREFIX):
            stamp = path.name[len(_RETIRED_PREFIX) :].split("-", 1)[0]
            retired_at = int(stamp) / 1e9 if stamp.isdigit() else 0.0
            if now - retired_at > RETIRED_GRACE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths with ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    result = renameat2(
        at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        logger.debug(
            "renameat2 exchange unsupported here (%s); renaming aside", errno.errorcode[err]
        )
        return False
    raise OSError(err, os.strerror(err), str(second))


@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Two refreshes writing extracts at once would swap each other's folders."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
