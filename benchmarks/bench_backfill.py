"""End-to-end backfill speed and memory: GA4 emulator -> Dagster assets -> DuckDB -> LTV tables.

Generates one big property (36 months), serves it from the GA4 emulator in this process, and
runs `pipelines.runner.backfill` for its last 12 months and for all 36, alternately, each in a
fresh subprocess with its own temporary DuckDB file and spool folder. A backfill's time covers
landing both reports of every month (emulator time included) and rebuilding the LTV tables;
rows are those of both raw reports. Publishing the tables (CSV/Parquet extracts, the HTML
report) comes after the LTV tables and is off unless `--publish` is given. Peak memory is that
of the backfill process and its workers, polled from /proc: the emulator runs here, outside
it, and its memory is printed apart. Quota comes from `raw.ga_loads`; the totals-only requests
of the reconcile checks are not recorded there, so they are measured at the emulator and
printed apart.

    .venv/bin/python benchmarks/bench_backfill.py [--users N] [--repeat N] [--parallel N]
        [--publish]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROPERTY_ID = "300003"
END = date(2025, 6, 30)
TOTAL_MONTHS = 36
SHORT_MONTHS = 12


def _months(count: int) -> list[str]:
    """The last `count` calendar months up to END, as YYYY-MM."""
    last = END.year * 12 + END.month - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(last - count + 1, last + 1)]


def _status_kib(pid: int | str, field: str) -> int:
    """One memory figure (KiB) from /proc/<pid>/status; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Peak resident memory of this process plus its workers, polled from /proc.

    getrusage alone misleads here: Linux carries a parent's peak across fork and exec, so a
    process started from the big emulator process would report the emulator's peak as its own.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self.peak_kib = 0
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            children = []
            for task in Path(f"/proc/{me}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    children += task.read_text().split()
            total = sum(_status_kib(pid, "VmRSS") for pid in [me, *children])
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(self._interval)

    @property
    def peak_mb(self) -> float:
        """The polled peak, or this process's own high-water mark when that is higher."""
        return max(self.peak_kib, _status_kib("self", "VmHWM")) / 1024


def _own_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tokens_used_today(address: str) -> int:
    """Tokens the emulator has charged the property today, read from a one-row request."""
    from google.analytics.data_v1beta.types import (
        DateRange,
        Metric,
        RunReportRequest,
        RunReportResponse,
    )

    from connectors.auth import build_client
    from connectors.emulator.quota import QuotaLimits

    client, _ = build_client(endpoint=address)
    response = client.run_report(
        RunReportRequest(
            property=f"properties/{PROPERTY_ID}",
            metrics=[Metric(name="newUsers")],
            date_ranges=[DateRange(start_date=END.isoformat(), end_date=END.isoformat())],
            return_property_quota=True,
        )
    )
    quota = RunReportResponse.pb(response).property_quota.tokens_per_day
    return QuotaLimits().tokens_per_day - quota.remaining


def run_child(args: argparse.Namespace) -> None:
    """One backfill in this fresh process; prints its figures as one JSON line."""
    import duckdb
    from dagster import DagsterInstance

    from pipelines.runner import backfill
    from pipelines.settings import PropertySettings, Settings

    folder = Path(args.folder)
    months = _months(args.months)
    for variable in ("GA_LTV_EXTRACTS_DIR", "GA_LTV_REPORT_DIR"):
        os.environ[variable] = str(folder / variable.lower()) if args.publish else "off"
    settings = Settings(
        properties=(PropertySettings(property_id=PROPERTY_ID),),
        emulator=args.address,
        duckdb_path=folder / "ga_ltv.duckdb",
        spool_dir=folder / "spool",
        start_month=months[0],
    )
    tokens_before = _tokens_used_today(args.address)
    started = time.perf_counter()
    with TreeMemory() as memory, DagsterInstance.ephemeral() as instance:
        report = backfill(settings, months=months, instance=instance, parallel=args.parallel)
    seconds = time.perf_counter() - started
    # The probe itself costs one token, charged before the figure it returns.
    tokens_all = _tokens_used_today(args.address) - tokens_before - 1
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        loads = con.execute(
            "select report, sum(rows_landed), sum(requests), sum(pages), "
            "       sum(quota_tokens_used), count(*), bool_or(data_loss_from_other_row)"
            "  from raw.ga_loads group by report order by report"
        ).fetchall()
    figures = {
        "seconds": seconds,
        "max_rss_mb": memory.peak_mb,
        "landed": len(report.landed),
        "failed_checks": report.failed_checks,
        "tokens_all": tokens_all,
        "loads": {
            name: {
                "rows": rows,
                "requests": requests,
                "pages": pages,
                "tokens": tokens,
                "months": months_loaded,
                "other_row": other,
            }
            for name, rows, requests, pages, tokens, months_loaded, other in loads
        },
    }
    print(json.dumps(figures))


def _spawn_backfill(address: str, months: int, parallel: int, publish: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as folder:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--address", address,
            "--months", str(months),
            "--folder", folder,
            "--parallel", str(parallel),
            *(["--publish"] if publish else []),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("GA_LTV_")}
        env.pop("DAGSTER_HOME", None)
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"backfill of {months} months failed ({done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _summary(label: str, runs: list[dict]) -> dict[str, float]:
    rows = sum(r["rows"] for r in runs[0]["loads"].values())
    seconds = statistics.median(r["seconds"] for r in runs)
    rss = statistics.median(r["max_rss_mb"] for r in runs)
    times = ", ".join(f"{r['seconds']:.1f}" for r in runs)
    peaks = ", ".join(f"{r['max_rss_mb']:.0f}" for r in runs)
    print(
        f"{label}: {rows:,} rows in median {seconds:.1f} s = {rows / seconds:,.0f} rows/s; "
        f"peak RSS median {rss:.0f} MB  (runs: {times} s; {peaks} MB)"
    )
    run = runs[0]
    loads = run["loads"]
    months = max(v["months"] for v in loads.values())
    for name, load in loads.items():
        print(
            f"  {name:<16} {load['rows']:>10,} rows  per property-month: "
            f"{load['requests'] / load['months']:.2f} requests, "
            f"{load['pages'] / load['months']:.2f} pages, "
            f"{load['tokens'] / load['months']:.1f} tokens"
            f"{'  (an (other) row appeared)' if load['other_row'] else ''}"
        )
    landing_tokens = sum(v["tokens"] for v in loads.values())
    check_tokens = run["tokens_all"] - landing_tokens
    print(
        f"  reconcile checks (totals-only, not in raw.ga_loads): 1 request per report per "
        f"month, {check_tokens / months:.1f} tokens per property-month measured at the emulator"
    )
    if run["failed_checks"]:
        print(f"  failed checks: {run['failed_checks']}")
    return {"rows_per_s": rows / seconds, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3_700_000)
    parser.add_argument("--repeat", type=int, default=3, help="backfills of each length")
    parser.add_argument("--parallel", type=int, default=1, help="partitions landed at once")
    parser.add_argument(
        "--publish", action="store_true", help="also write the extracts and the HTML report"
    )
    parser.add_argument(
        "--other-row-limit",
        type=int,
        default=1_000_000,
        help="rows a report keeps before GA's (other) row; 50000 is a standard property's day",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--months", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    from connectors.emulator.generated import generate_property
    from connectors.emulator.server import EmulatorOptions, EmulatorServer

    print(_load())
    started = time.perf_counter()
    data = generate_property(
        property_id=PROPERTY_ID, users=args.users, months=TOTAL_MONTHS, end=END
    )
    print(
        f"generated {args.users:,} users, {data.activity.num_rows:,} activity rows over "
        f"{TOTAL_MONTHS} months in {time.perf_counter() - started:.1f} s"
    )
    options = EmulatorOptions(other_row_limit=args.other_row_limit)
    with EmulatorServer([data], options=options) as server:
        print(f"emulator started; this process (the emulator) at {_own_rss_mb():.0f} MB peak")
        runs: dict[int, list[dict]] = {SHORT_MONTHS: [], TOTAL_MONTHS: []}
        for _ in range(args.repeat):
            for months in (SHORT_MONTHS, TOTAL_MONTHS):
                runs[months].append(
                    _spawn_backfill(server.address, months, args.parallel, args.publish)
                )
        print(f"emulator process peak RSS {_own_rss_mb():.0f} MB (not part of the backfill)")
    print(_load())
    print(f"publishing (extracts, HTML report): {'on' if args.publish else 'off'}")
    short = _summary(f"{SHORT_MONTHS} months", runs[SHORT_MONTHS])
    full = _summary(f"{TOTAL_MONTHS} months", runs[TOTAL_MONTHS])
    speed = full["rows_per_s"] / short["rows_per_s"]
    print(f"rows/s, {TOTAL_MONTHS} vs {SHORT_MONTHS} months: {speed:.2f}x")
    print(f"peak RSS, {TOTAL_MONTHS} vs {SHORT_MONTHS} months: {full['rss'] / short['rss']:.3f}x")


if __name__ == "__main__":
    main()
