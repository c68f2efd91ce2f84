"""`ga-ltv`: run the demo, backfill months, or serve the GA4 emulator on its own."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from connectors.emulator.export_replay import ExportFileError
from connectors.emulator.faults import FaultOptions
from connectors.emulator.quota import QuotaLimits
from connectors.emulator.server import EmulatorOptions, PortInUseError
from connectors.errors import Ga4Error
from connectors.ga4_client import normalize_property_id
from pipelines.errors import BackfillError
from pipelines.logs import configure_logging
from pipelines.partitions import MONTH_FORMAT, add_months
from pipelines.resources import publishing_for
from pipelines.settings import (
    DEMO_DATA_DIR,
    EMBEDDED_MONTHS,
    EMBEDDED_PROPERTY_ID,
    EXPORT_DATA_DIR,
    PropertySettings,
    Settings,
    SettingsError,
    check_month,
    load_settings,
)
from warehouse.checks import load_states
from warehouse.connection import WarehouseError
from warehouse.summary import channel_summary

log = logging.getLogger("ga_ltv")
Number = TypeVar("Number", int, float)

DEFAULT_EXPORT_PROPERTY_ID = "200001"


def _months(start: str, end: str) -> list[str]:
    first = date.fromisoformat(check_month(start, what="--start") + "-01")
    last = date.fromisoformat(check_month(end, what="--end") + "-01")
    if first > last:
        raise SettingsError(f"--start {start} is after --end {end}.")
    # The earliest time zone is UTC+14: a month that has not begun there has no data anywhere.
    current = (datetime.now(UTC) + timedelta(hours=14)).date().replace(day=1)
    if last > current:
        raise SettingsError(
            f"--end {end} is in the future; the latest month with data is "
            f"{current.strftime(MONTH_FORMAT)}."
        )
    months = []
    while first <= last:
        months.append(first.strftime(MONTH_FORMAT))
        first = add_months(first, 1)
    return months


def _print_summary(settings: Settings) -> None:
    """Per property, in its own currency: LTV of the channels, weighted over old-enough cohorts."""
    db_path = settings.duckdb_path
    ages = ("ltv_1m", "ltv_3m", "ltv_12m")
    for prop in channel_summary(db_path):
        label = settings.for_property(prop.property_id).label
        print(f"\nproperty {prop.property_id}{f' {label}' if label else ''} ({prop.currency_code})")
        print(f"{'channel':<28}{'users':>9}{'LTV 1m':>10}{'LTV 3m':>10}{'LTV 12m':>10}")
        for row in prop.channels:
            cells = "".join(
                f"{row[k]:>10.2f}" if row[k] is not None else f"{'-':>10}" for k in ages
            )
            print(f"{str(row['channel'])[:27]:<28}{row['acquired_users']:>9,}{cells}")
    print(
        "\nLTV at N months: cumulative revenue per acquired user of the cohorts that have "
        "reached N months."
    )
    print(f"DuckDB file: {db_path.resolve()}")
    report_folder = publishing_for(settings).report_path(db_path)
    last_month = max((state.month for state in load_states(db_path)), default=None)
    if report_folder and last_month:
        report = report_folder / last_month / "ltv_report.html"
        if report.is_file():
            print(f"HTML report: {report.resolve()}")
    print(
        "Tables: marts.ltv_monthly, marts.ltv_summary, marts.ltv_by_channel, "
        "marts.ltv_by_source, marts.ltv_by_medium, marts.ltv_by_campaign"
    )


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"--time-zone {name!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)."
        ) from None
    return name


# A command's runs write to its own terminal; Dagster's per-step capture of that output costs
# two helper processes a step, which print tracebacks of their own on Ctrl-C.
_NO_COMPUTE_LOGS = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}


def _instance() -> DagsterInstance:
    """The persistent instance when DAGSTER_HOME is set, so runs show in the UI."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    folder = Path(home).expanduser()
    if not folder.is_absolute() or not folder.is_dir():
        raise SettingsError(f"DAGSTER_HOME must be the absolute path of a folder, got {home!r}.")
    ref = InstanceRef.from_dir(str(folder), overrides=_NO_COMPUTE_LOGS)  # type: ignore[arg-type]
    return DagsterInstance.from_ref(ref)


def _keep_apart(sandbox: Settings, configured: Settings) -> None:
    """Refuse a demo or replay whose files would be the configured properties' own."""
    if configured.embedded:
        return  # no property configured: no real figures to keep apart from
    ours = publishing_for(sandbox)
    theirs = publishing_for(configured)
    clashes = [
        what
        for what, mine, real in (
            ("warehouse", sandbox.duckdb_path, configured.duckdb_path),
            ("extracts folder", ours.extracts_path(sandbox.duckdb_path),
             theirs.extracts_path(configured.duckdb_path)),
            ("report folder", ours.report_path(sandbox.duckdb_path),
             theirs.report_path(configured.duckdb_path)),
        )
        if mine is not None and real is not None and mine.resolve() == real.resolve()
    ]  # fmt: skip
    if clashes:
        raise SettingsError(
            f"--duckdb {sandbox.duckdb_path} would put generated or replayed data in the "
            f"configured properties' {' and '.join(clashes)}; choose a file in another folder."
        )


def cmd_demo(args: argparse.Namespace) -> None:
    configured = load_settings()  # refuses bad settings, as every command does
    # Apart from configured properties' files and targets, whatever is configured.
    settings = Settings(duckdb_path=args.duckdb or DEMO_DATA_DIR / "ga_ltv.duckdb", sandbox=True)
    _keep_apart(settings, configured)
    this_month = date.today().replace(day=1)
    months = [
        add_months(this_month, -n).strftime(MONTH_FORMAT) for n in range(EMBEDDED_MONTHS - 1, 0, -1)
    ]
    log.info(
        "demo: generated property %s, backfilling %s..%s",
        EMBEDDED_PROPERTY_ID,
        months[0],
        months[-1],
    )

    _backfill_and_summarise(settings, months)


def _backfill_and_summarise(
    settings: Settings, months: list[str], *, parallel: int = 1, force: bool = False
) -> None:
    """Backfill, then show the LTV tables; also when only publishing them failed."""
    from pipelines.runner import backfill  # loads the Dagster definitions

    try:
        with _instance() as instance:
            backfill(settings, months=months, instance=instance, parallel=parallel, force=force)
    except BackfillError as exc:
        if exc.ltv_built:
            _print_summary(settings)
        raise
    _print_summary(settings)


def cmd_run(args: argparse.Namespace) -> None:
    months = _months(args.start, args.end)
    settings = load_settings()
    if not args.export:
        if settings.embedded:
            raise SettingsError(
                "No GA4 property is configured: set GA_LTV_PROPERTIES (or [[properties]] in "
                "the GA_LTV_SETTINGS file), with GA_LTV_EMULATOR too for an emulator. `ga-ltv "
                "demo` runs on the generated demo property; `--export FILE` on a GA4 export."
            )
        if args.duckdb:
            settings = replace(settings, duckdb_path=args.duckdb)
        start = min(months[0], settings.start_month or months[0])
        _backfill_and_summarise(
            replace(settings, start_month=start), months, parallel=args.parallel, force=args.force
        )
        return
    from connectors.emulator.export_replay import load_export
    from connectors.emulator.server import EmulatorServer

    prop = load_export(
        args.export,
        property_id=normalize_property_id(args.property_id),
        time_zone=_time_zone(args.time_zone),
        currency_code=args.currency,
    )
    # A replay lands apart, like the demo, unless --duckdb says where.
    replay = replace(
        settings,
        properties=(PropertySettings(property_id=prop.property_id, label="GA4 export"),),
        start_month=months[0],
        duckdb_path=args.duckdb or EXPORT_DATA_DIR / "ga_ltv.duckdb",
        spool_dir=None,
        sandbox=True,
    )
    _keep_apart(replay, settings)
    with EmulatorServer([prop]) as server:
        settings = replace(replay, emulator=server.address)
        _backfill_and_summarise(settings, months, parallel=args.parallel, force=args.force)


def cmd_emulator_serve(args: argparse.Namespace) -> None:
    from connectors.emulator.server import EmulatorServer

    options = emulator_options(args)  # checked before the properties take time to build
    if args.export:
        from connectors.emulator.export_replay import load_export

        props = [
            load_export(
                args.export,
                property_id=normalize_property_id(args.property_id),
                time_zone=_time_zone(args.time_zone),
                currency_code=args.currency,
            )
        ]
    else:
        from connectors.emulator.generated import demo_properties

        props = demo_properties(large_users=args.large_users)
    server = EmulatorServer(props, port=args.port, rest_port=args.rest_port, options=options)
    address = server.start()
    print(f"GA4 Data API emulator listening on {address}", flush=True)
    if args.rest_port is not None:
        print(f"REST (HTTP/JSON) on http://{server.rest_address}", flush=True)
    for prop in props:
        print(
            f"serving properties/{prop.property_id} ({prop.display_name}, "
            f"{prop.time_zone}, {prop.currency_code})",
            flush=True,
        )
    print(f"quota per property: {_describe_quota(options)}", flush=True)
    if options.faults != FaultOptions():
        print(f"faults: {_describe_faults(options)}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def emulator_options(args: argparse.Namespace) -> EmulatorOptions:
    """The emulator's quota and faults as the command line set them (defaults: GA's)."""
    try:
        faults = FaultOptions(
            seed=args.fault_seed,
            unavailable_rate=args.unavailable_rate,
            deadline_exceeded_rate=args.deadline_exceeded_rate,
            latency_seconds=args.latency,
        )
    except ValueError as exc:
        raise SettingsError(f"--unavailable-rate, --deadline-exceeded-rate: {exc}.") from None
    quota = QuotaLimits(
        tokens_per_day=args.tokens_per_day,
        tokens_per_hour=args.tokens_per_hour,
        concurrent_requests=args.concurrent_requests,
    )
    return EmulatorOptions(quota=quota, faults=faults, other_row_limit=args.other_row_limit)


def _describe_quota(options: EmulatorOptions) -> str:
    quota = options.quota
    return (
        f"{quota.tokens_per_day:,} tokens a day, {quota.tokens_per_hour:,} an hour, "
        f"{quota.concurrent_requests} requests at once; (other) row past "
        f"{options.other_row_limit:,} rows"
    )


def _describe_faults(options: EmulatorOptions) -> str:
    faults = options.faults
    return (
        f"UNAVAILABLE {faults.unavailable_rate:.0%}, DEADLINE_EXCEEDED "
        f"{faults.deadline_exceeded_rate:.0%}, {faults.latency_seconds:g} s added latency "
        f"(seed {faults.seed})"
    )


def _bounded(
    convert: Callable[[str], Number], low: float, high: float, what: str
) -> Callable[[str], Number]:
    """An argparse type: a number from ``low`` to ``high``, refused with ``what`` it must be."""

    def parse(value: str) -> Number:
        try:
            number = convert(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value!r}")
        return number

    return parse


_INT32_MAX = 2**31 - 1  # GA's quota fields are 32-bit
_rate = _bounded(float, 0.0, 1.0, "a fraction from 0 to 1")
_positive_int = _bounded(int, 1, _INT32_MAX, f"a whole number from 1 to {_INT32_MAX}")
_seconds = _bounded(float, 0.0, 60.0, "from 0 to 60 seconds")
_port = _bounded(int, 0, 65535, "a port from 0 (any free one) to 65535")


def _emulator_behaviour_options(serve: argparse.ArgumentParser) -> None:
    """Quota and faults, to rehearse a pipeline against a GA that says no."""
    limits, defaults = QuotaLimits(), EmulatorOptions()
    quota = serve.add_argument_group("quota, per property (default: a standard property's)")
    for option, default, what in (
        ("--tokens-per-day", limits.tokens_per_day, "tokens a day"),
        ("--tokens-per-hour", limits.tokens_per_hour, "tokens an hour"),
        ("--concurrent-requests", limits.concurrent_requests, "requests in flight"),
        ("--other-row-limit", defaults.other_row_limit, "rows a report keeps before '(other)'"),
    ):
        quota.add_argument(
            option, type=_positive_int, default=default, metavar="N",
            help=f"{what}, default %(default)s",
        )  # fmt: skip
    faults = serve.add_argument_group("faults, per runReport request (default: none)")
    faults.add_argument(
        "--unavailable-rate", type=_rate, default=0.0, metavar="RATE", help="0 to 1, e.g. 0.1"
    )
    faults.add_argument(
        "--deadline-exceeded-rate", type=_rate, default=0.0, metavar="RATE", help="0 to 1"
    )
    faults.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="added to every answer, up to 60",
    )
    faults.add_argument(
        "--fault-seed", type=int, default=0, metavar="N", help="makes a fault run repeatable"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ga-ltv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="backfill the generated demo property and build LTV")
    demo.add_argument("--duckdb", type=Path, help="DuckDB file (default: data/demo/ga_ltv.duckdb)")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="load a range of months and build the LTV tables")
    run.add_argument("--start", required=True, help="first month, YYYY-MM")
    run.add_argument("--end", required=True, help="last month, YYYY-MM")
    run.add_argument("--duckdb", type=Path, help="DuckDB file (default: data/ga_ltv.duckdb)")
    run.add_argument("--parallel", type=_positive_int, default=1, help="partitions landed at once")
    run.add_argument(
        "--force", action="store_true", help="reload months already loaded after they were final"
    )
    _export_options(run)
    run.set_defaults(func=cmd_run)

    emulator = sub.add_parser("emulator", help="the local GA4 Data API emulator")
    emulator_sub = emulator.add_subparsers(dest="emulator_command", required=True)
    serve = emulator_sub.add_parser("serve", help="serve until stopped (Ctrl-C)")
    serve.add_argument("--port", type=_port, default=50051)
    serve.add_argument(
        "--rest-port", type=_port, help="also answer HTTP/JSON (REST transport) on this port"
    )
    serve.add_argument(
        "--large-users",
        type=_positive_int,
        default=1_500_000,
        help="users of the large demo property 100003 (fewer starts faster)",
    )
    _export_options(serve)
    _emulator_behaviour_options(serve)
    serve.set_defaults(func=cmd_emulator_serve)
    return parser


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--export",
        type=Path,
        action="append",
        help="GA4 BigQuery export file (Parquet or NDJSON); repeat for more",
    )
    parser.add_argument(
        "--property-id",
        default=DEFAULT_EXPORT_PROPERTY_ID,
        help="property id the export is served as",
    )
    parser.add_argument("--time-zone", default="UTC", help="the export property's time zone")
    parser.add_argument("--currency", default="USD", help="the export property's currency")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        args = _parser().parse_args(argv)
        args.func(args)
    except (
        SettingsError,
        Ga4Error,
        BackfillError,
        ExportFileError,
        WarehouseError,
        PortInUseError,
    ) as exc:
        print(f"ga-ltv: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "ga-ltv: interrupted. Partitions that finished are kept; the same command resumes.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
