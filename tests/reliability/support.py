"""What the reliability tests share: a CLI run to kill at a chosen moment, an emulator that can
hold a request open, and the warehouse invariants every interrupted run must leave true."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from connectors.emulator.server import EmulatorServer
from connectors.reports import REPORTS
from tests.pipelines.support import marts
from warehouse.connection import lock_path, quote_qualified, reader
from warehouse.models import build_ltv_tables

RUN_TIMEOUT_SECONDS = 120.0


class GatedEmulator(EmulatorServer):
    """An emulator that can hold one report page request open until the test lets it go, so a
    client can be killed while its fetch is in flight (not before, not after)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._skip: int | None = None
        self.arrived = threading.Event()
        self.release = threading.Event()

    def hold_page_request(self, *, skip: int = 0) -> None:
        """Hold the page request after ``skip`` others; totals requests pass untouched."""
        with self._lock:
            self._skip = skip
            self.arrived.clear()
            self.release.clear()

    def _run_report(self, request: Any) -> bytes:
        if request.return_property_quota:  # the landing's page requests; totals do not ask
            with self._lock:
                hold = self._skip == 0
                if self._skip is not None:
                    self._skip = None if hold else self._skip - 1
            if hold:
                self.arrived.set()
                self.release.wait(RUN_TIMEOUT_SECONDS)
        return super()._run_report(request)


class CliRun:
    """``ga-ltv run`` in a subprocess, its stderr collected line by line as it is written."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.stdout = ""
        self._stdout_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stdout_reader.start()
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, seen: Callable[[list[str]], bool], *, timeout: float) -> None:
        """Block until ``seen(lines)`` holds; fail if the run ends or time runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not seen(self.lines):
                if self.process.poll() is not None and not self._stderr_reader.is_alive():
                    raise AssertionError(
                        f"the run ended (exit {self.process.returncode}) before the kill point; "
                        f"stderr tail:\n{''.join(self.lines[-15:])}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the kill point never came; stderr tail:\n" + self.stderr)
                self._changed.wait(min(left, 0.2))

    def kill(self) -> bool:
        """SIGKILL; True when the process was still running, so the kill really interrupted it."""
        self.process.send_signal(signal.SIGKILL)
        self.finish()
        return self.process.returncode == -signal.SIGKILL

    def finish(self, timeout: float = RUN_TIMEOUT_SECONDS) -> int:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the run did not finish in time:\n" + self.stderr) from None
        self._stdout_reader.join(10)
        self._stderr_reader.join(10)
        return self.process.returncode


def writer_active(db_path: Path) -> bool:
    """True while some process holds the warehouse's exclusive (writer) lock."""
    fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def wait_for_writer(run: CliRun, db_path: Path, *, timeout: float = 60.0) -> None:
    """Poll until the run holds the writer lock (it is inside a DuckDB write session)."""
    deadline = time.monotonic() + timeout
    while not writer_active(db_path):
        if run.process.poll() is not None:
            raise AssertionError("the run ended before it wrote; stderr:\n" + run.stderr[-3000:])
        if time.monotonic() > deadline:
            raise AssertionError("the run never took the writer lock")
        time.sleep(0.002)


RawRows = dict[tuple[str, str, str], list[tuple]]


def raw_partitions(db_path: Path) -> RawRows:
    """Every raw row without its load id and time, keyed by (report, property, month)."""
    rows: RawRows = {}
    with reader(db_path) as con:
        for report in REPORTS.values():
            table = quote_qualified(report.raw_table)
            result = con.execute(
                # A fixed, quoted table name.
                "select property_id, strftime(partition_month, '%Y-%m') as month, "  # noqa: S608
                "* exclude (property_id, partition_month, load_id, loaded_at) "
                f"from {table} order by all"
            ).fetchall()
            for row in result:
                rows.setdefault((report.name, row[0], row[1]), []).append(row[2:])
    return rows


def check_raw_invariants(db_path: Path, reference: RawRows) -> int:
    """Each load row matches exactly its partition's rows, no row lacks a load, and every
    landed partition equals the uninterrupted run's; returns the partitions landed."""
    with reader(db_path) as con:
        if not con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'ga_loads'"
        ).fetchone()[0]:
            return 0
        for report in REPORTS.values():
            table = quote_qualified(report.raw_table)
            # Fixed, quoted table names; the report name is a parameter.
            mismatched = con.execute(
                "select l.property_id, l.partition_month, l.rows_landed, count(r.load_id)\n"  # noqa: S608
                "  from raw.ga_loads l\n"
                f"  left join {table} r\n"
                "    on r.property_id = l.property_id\n"
                "   and r.partition_month = l.partition_month\n"
                "   and r.load_id = l.load_id\n"
                " where l.report = ?\n"
                " group by all\n"
                "having count(r.load_id) <> l.rows_landed",
                [report.name],
            ).fetchall()
            assert not mismatched, f"{report.name}: rows_landed disagrees: {mismatched}"
            orphans = con.execute(
                f"select count(*) from {table} r\n"  # noqa: S608
                " where not exists (select 1 from raw.ga_loads l\n"
                "                    where l.report = ? and l.property_id = r.property_id\n"
                "                      and l.partition_month = r.partition_month\n"
                "                      and l.load_id = r.load_id)",
                [report.name],
            ).fetchone()[0]
            assert orphans == 0, f"{report.name}: {orphans} raw rows have no load row"
        landed = con.execute(
            "select report, property_id, strftime(partition_month, '%Y-%m') from raw.ga_loads"
        ).fetchall()
    current = raw_partitions(db_path)
    for key in landed:
        assert current.get(key, []) == reference.get(key, []), f"partition {key} differs"
    return len(landed)


def check_marts(db_path: Path, before: dict[str, list[tuple]], scratch: Path) -> str:
    """The marts are absent, or exactly as before the run, or exactly what a build from the
    raw tables now gives; anything else is a half-finished build. Returns which it was."""
    now = marts(db_path)
    if now == before:
        return "as before"
    copy = scratch / "rebuilt.duckdb"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    shutil.copy2(db_path, copy)
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():
        shutil.copy2(wal, copy.with_name(copy.name + ".wal"))
    build_ltv_tables(copy)
    assert now == marts(copy), "the marts are neither the previous build nor a complete new one"
    return "rebuilt"
