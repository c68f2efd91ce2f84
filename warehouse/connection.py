"""Open the warehouse's DuckDB file safely from many processes.

DuckDB lets one process write a database file at a time and refuses readers while it does, so
every session takes a ``flock`` on ``<db>.lock`` first: exclusive for writers, shared for
readers. Sessions are short (open, work, commit, close) so parallel partition loads queue
instead of failing. The file holds customer revenue, so it is created readable by its owner only.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
_LOCK_POLL_SECONDS = 0.05
# A wait for another writer is routine in a parallel backfill; past this, it is worth a line.
_TELL_WAIT_AFTER_SECONDS = 5.0
# How long to wait for a program that opened the file without our lock file.
FOREIGN_LOCK_TIMEOUT_SECONDS = 60.0
# A DuckDB file starts with an 8-byte checksum followed by this magic.
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class WarehouseError(Exception):
    """The warehouse file could not be used."""


class WarehouseLockTimeout(WarehouseError, TimeoutError):
    """Another process held the warehouse lock for longer than the caller would wait."""


class CorruptWarehouseError(WarehouseError):
    """The path exists but is not a DuckDB database."""


class ForeignDatabaseError(WarehouseError):
    """The file is a DuckDB database that ga-ltv did not create: it is left as it is."""


class SchemaMismatchError(WarehouseError):
    """A ga-ltv table exists with other columns than this code writes (foreign or very old)."""


class UnwritableWarehouseError(WarehouseError):
    """The warehouse's folder, lock file or database cannot be written by this user."""


class DiskFullError(WarehouseError, OSError):
    """A write ran out of disk space; what was there before the write is intact."""


def quote_identifier(name: str) -> str:
    """Quote a SQL identifier after checking it is a plain lower-case name.

    Only names the code itself defines are interpolated into SQL; anything else is refused so a
    value can never reach a statement through this path.
    """
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return f'"{name}"'


def quote_qualified(name: str) -> str:
    """Quote a ``schema.table`` name part by part."""
    return ".".join(quote_identifier(part) for part in name.split("."))


def lock_path(db_path: Path) -> Path:
    """The lock file that serialises access to ``db_path``."""
    return db_path.with_name(db_path.name + ".lock")


@contextmanager
def writer(
    db_path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    config: dict[str, str | int] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection held under the exclusive lock; created (0600) if missing.

    The caller manages transactions; the connection is closed (and the lock released) on exit.
    `config` holds DuckDB settings for this connection (threads, memory_limit, ...).
    """
    path = Path(db_path)
    if path.is_dir():
        _check_is_duckdb(path)  # before a lock file appears beside the folder
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        _raise_if_unwritable(exc, path, exc.filename or path.parent)
        raise
    with _flock(path, exclusive=True, timeout=lock_timeout):
        _check_is_duckdb(path)
        # umask rather than chmod-after-create so the file and DuckDB's WAL are never readable
        # by others, not even for a moment. Writers are serialised by the lock, so nested
        # changes from other writer threads of this process cannot interleave.
        previous_umask = os.umask(0o077)
        try:
            con = _connect(path, read_only=False, config=config)
            try:
                yield con
            except duckdb.Error as exc:
                _raise_if_corrupt(exc, path)
                if "No space left on device" in str(exc):
                    raise DiskFullError(
                        f"the disk holding {path} is full: DuckDB could not write ({exc}). The "
                        "warehouse is as it was before this write; free space on "
                        f"{path.parent} and run the same command again."
                    ) from None
                raise
            finally:
                con.close()
        finally:
            os.umask(previous_umask)


@contextmanager
def reader(
    db_path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection held under the shared lock; the file must already exist."""
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"warehouse database {path} does not exist; run a load first")
    if path.is_dir():
        _check_is_duckdb(path)
    with _flock(path, exclusive=False, timeout=lock_timeout):
        _check_is_duckdb(path)
        con = _connect(path, read_only=True)
        try:
            yield con
        except duckdb.Error as exc:
            _raise_if_corrupt(exc, path)
            raise
        finally:
            con.close()


@contextmanager
def _flock(db_path: Path, *, exclusive: bool, timeout: float) -> Iterator[None]:
    """Hold ``flock`` on the lock file beside ``db_path``, polling until ``timeout``."""
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        _raise_if_unwritable(exc, db_path, path)
        raise
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not told and time.monotonic() - started > _TELL_WAIT_AFTER_SECONDS:
                    told = True  # a long silence would look like a hang: say what it waits for
                    logger.info(
                        "warehouse %s is in use by another process; waiting up to %.0fs",
                        db_path, timeout,
                    )  # fmt: skip
                if time.monotonic() >= deadline:
                    kind = "write" if exclusive else "read"
                    raise WarehouseLockTimeout(
                        f"timed out after {timeout:.1f}s waiting for the {kind} lock {path}; "
                        "another process is using the warehouse (a long load or rebuild?)"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        waited = time.monotonic() - started
        if waited > 1.0:
            logger.info("waited %.1fs for warehouse lock %s", waited, path)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _check_is_duckdb(path: Path) -> None:
    """Refuse a file that exists but is not a DuckDB database, instead of replacing it."""
    if not path.exists():
        return
    if path.is_dir():
        raise WarehouseError(
            f"{path} is a folder; the warehouse is a file. Give a file path such as "
            f"{path / 'ga_ltv.duckdb'} (--duckdb or GA_LTV_DUCKDB)."
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
    except OSError as exc:
        raise WarehouseError(
            f"cannot read warehouse database {path} ({exc.strerror}). Give the user running "
            "ga-ltv read and write access to it (its owner, mode 0600), or restore it from a "
            "backup, or move it aside and rebuild the warehouse by reloading the partitions "
            "from GA."
        ) from None
    if header[_MAGIC_OFFSET:] != _DUCKDB_MAGIC:
        raise CorruptWarehouseError(_corrupt_message(path))


def _connect(
    path: Path,
    *,
    read_only: bool,
    timeout: float = FOREIGN_LOCK_TIMEOUT_SECONDS,
    config: dict[str, str | int] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect, turning DuckDB's open errors into ones that name the file and a way out.

    A process outside this protocol (an analyst's SQL client, say) may hold DuckDB's own file
    lock; a load waits for it to let go rather than failing at once.
    """
    deadline = time.monotonic() + timeout
    waiting = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            _raise_if_corrupt(exc, path)
            for error_number in () if read_only else _UNWRITABLE:
                if os.strerror(error_number) in str(exc):
                    _raise_if_unwritable(
                        OSError(error_number, os.strerror(error_number)), path, path
                    )
            if "Could not set lock" in str(exc) and time.monotonic() < deadline:
                if not waiting:
                    waiting = True
                    logger.info(
                        "warehouse %s is open in another program; waiting up to %.0fs for it "
                        "to let go", path, timeout,
                    )  # fmt: skip
                time.sleep(_LOCK_POLL_SECONDS * 4)
                continue
            hint = (
                " Another program has the file open (close it, or open it read-only only "
                "between loads)."
                if "Could not set lock" in str(exc)
                else ""
            )
            raise WarehouseError(f"could not open warehouse database {path}: {exc}{hint}") from exc


# The errors that mean "this user may not write here", as opposed to a full disk or a bug.
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _raise_if_unwritable(exc: OSError, db_path: Path, where: str | os.PathLike[str]) -> None:
    """Name the warehouse and what could not be written, instead of a bare OSError on a lock."""
    if exc.errno not in _UNWRITABLE:
        return
    raise UnwritableWarehouseError(
        f"{where} cannot be written ({exc.strerror}), and the warehouse {db_path} needs it: "
        "choose a writable folder for --duckdb / GA_LTV_DUCKDB, or give the user running "
        "ga-ltv write access there."
    ) from None


def _raise_if_corrupt(exc: duckdb.Error, path: Path) -> None:
    """A file that is truncated or damaged past its header fails at open or at the first read
    of a damaged block; either way the user needs the recovery advice, not DuckDB's words."""
    text = str(exc)
    damaged = "not a valid DuckDB database" in text or "Corrupt database file" in text
    truncated = "Could not read enough bytes" in text and str(path) in text
    if damaged or truncated:
        # DuckDB's text is kept in the message; chaining would let a caller that reports the
        # innermost cause (Dagster's failure summary) show DuckDB's words instead of the advice.
        raise CorruptWarehouseError(f"{_corrupt_message(path)} (DuckDB: {text})") from None


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it: a commit that failed (on a full disk, say)
    has already ended the transaction, and a second error would replace the real one."""
    with suppress(duckdb.TransactionException):
        con.execute("rollback")


def _corrupt_message(path: Path) -> str:
    return (
        f"{path} exists but is not a DuckDB database (corrupt or another file). "
        "It was left untouched: restore it from a backup, or move it aside and rebuild the "
        "warehouse by reloading the partitions from GA."
    )
