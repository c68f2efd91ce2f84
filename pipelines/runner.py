"""Run backfills through the Dagster jobs outside the UI (the CLI and the tests use this).

A backfill skips partitions already loaded after their month was final, so a stopped or
crashed backfill resumes where it stopped. Partitions may run in parallel worker processes;
the warehouse's file lock queues their writes. A property that fails stops only its own
remaining months.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from dagster import DagsterInstance, DagsterRunStatus, ExecuteInProcessResult, RunsFilter
from dagster._core.instance.ref import InstanceRef  # not exported at the top level

from pipelines.assets import LTV_STEP, RAW_REPORTS
from pipelines.definitions import LTV_JOB, RAW_JOB, build_definitions
from pipelines.errors import BackfillError
from pipelines.logs import configure_logging
from pipelines.partitions import (
    MONTH_DIMENSION,
    next_partition_tag,
    partition_key,
    property_month_partitions,
)
from pipelines.resources import shared_ga4_clients
from pipelines.settings import Settings
from warehouse.checks import LoadState, finished_partitions, load_states

log = logging.getLogger(__name__)

_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# Partitions of one property landing at once, as dagster.yaml's run queue allows: with the
# connector's 2 requests per process that keeps a backfill to 4 of GA's 10 concurrent
# requests per property (see connectors/quota.py for the whole sum).
RUNS_PER_PROPERTY = 2
# Tags naming the process that runs a job in-process, so that a later backfill can tell a run
# whose process was killed from one still going.
HOST_TAG, PID_TAG = "ga_ltv/host", "ga_ltv/pid"
_UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def fail_orphaned_runs(instance: DagsterInstance) -> int:
    """Mark failed the runs this tool started on this machine whose process is gone.

    A backfill killed mid-run (SIGKILL, a closed terminal) leaves its run STARTED for ever; the
    run queue counts such runs against its per-property limit, so enough of them would hold
    the schedule's and the UI's runs queued without a word. Returns how many were marked.
    """
    if instance.is_ephemeral:
        return 0
    runs = instance.get_runs(
        filters=RunsFilter(statuses=_UNFINISHED, tags={HOST_TAG: socket.gethostname()})
    )
    orphaned = [r for r in runs if r.tags.get(PID_TAG, "").isdigit()
                and not _alive(int(r.tags[PID_TAG]))]  # fmt: skip
    for run in orphaned:
        instance.report_run_failed(
            run,
            message=f"the ga-ltv process that ran it (pid {run.tags[PID_TAG]}) is gone; marked "
            "failed so that the run queue does not keep counting it",
        )
        log.warning("run %s of %s was left unfinished by a killed process; marked failed",
                    run.run_id, run.job_name)  # fmt: skip
    return len(orphaned)


@dataclass
class BackfillReport:
    """What a backfill did, partition by partition."""

    landed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    before_start: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    ltv_built: bool = False  # the LTV tables were rebuilt from what landed
    ltv_error: str | None = None  # building or publishing them failed


@dataclass(frozen=True)
class _Outcome:
    property_id: str
    month: str
    error: str | None
    failed_checks: tuple[str, ...]


def _failure_message(result: ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            # Dagster wraps the asset's own exception; the innermost cause is the one to show.
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                # Dagster's message already starts with the exception's qualified class name.
                message = error.message.strip()
                return (
                    message
                    if error.cls_name in message.split(":", 1)[0]
                    else (f"{error.cls_name}: {message}")
                )
    return "the run failed; see the Dagster logs"


def _interrupted(result: ExecuteInProcessResult) -> bool:
    """Whether the run stopped because the user interrupted it (Ctrl-C, SIGTERM)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None:
                if error.cls_name == "DagsterExecutionInterruptedError":
                    return True
                error = error.cause
    return False


def _failed_checks(result: ExecuteInProcessResult, label: str) -> tuple[str, ...]:
    return tuple(
        f"{label} {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
        f"({evaluation.severity.value})"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    )


def _land_partition(
    settings: Settings,
    property_id: str,
    month: str,
    instance: DagsterInstance,
    *,
    next_key: tuple[str, str] | None = None,
) -> _Outcome:
    """One partition's run; `next_key` names the partition landed after it, to ask ahead."""
    job = build_definitions(settings).resolve_job_def(RAW_JOB)
    log.info("property %s month %s: landing raw reports", property_id, month)
    result = job.execute_in_process(
        partition_key=partition_key(property_id, month),
        instance=instance,
        run_config=_QUIET,
        raise_on_error=False,
        tags=_process_tags() | (next_partition_tag(*next_key) if next_key else {}),
    )
    if _interrupted(result):
        raise KeyboardInterrupt  # Ctrl-C stops the backfill, not just this partition
    label = f"property {property_id} month {month}"
    error = None if result.success else _failure_message(result)
    return _Outcome(property_id, month, error, _failed_checks(result, label))


def _land_partition_in_worker(
    settings: Settings, property_id: str, month: str, instance_ref: InstanceRef | None
) -> _Outcome:
    """Entry point of a worker process: its own instance handle, or a throwaway one."""
    configure_logging()
    instance = (
        DagsterInstance.from_ref(instance_ref) if instance_ref else DagsterInstance.ephemeral()
    )
    with instance:
        return _land_partition(settings, property_id, month, instance)


def _ignore_ctrl_c_between_runs() -> None:
    """A worker's Ctrl-C (the terminal sends it to the whole process group) is Dagster's to
    handle while a run goes, which stops that run cleanly; between runs it is ignored, so an
    idle worker does not die with a traceback. The parent stops the backfill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_months(settings: Settings, months: Sequence[str]) -> None:
    available = (
        property_month_partitions(settings)
        .get_partitions_def_for_dimension(MONTH_DIMENSION)
        .get_partition_keys()
    )
    unknown = [m for m in months if m not in available]
    if unknown:
        raise BackfillError(
            f"Months {', '.join(unknown)} are outside the partitions "
            f"{available[0]}..{available[-1]} (a month that has not begun cannot be loaded; "
            "set GA_LTV_START_MONTH to go further back)."
        )


def _check_currencies(
    settings: Settings, states: list[LoadState], *, months: Sequence[str], force: bool
) -> None:
    """Refuse to mix currencies: a property's months must all be in one reporting currency."""
    for prop in settings.properties:
        if not prop.currency:
            continue
        other = sorted(
            {s.month for s in states
             if s.property_id == prop.property_id and s.currency_code not in ("", prop.currency)}
        )  # fmt: skip
        if other and not (force and set(other) <= set(months)):
            raise BackfillError(
                f"Property {prop.property_id} is set to report in {prop.currency}, but months "
                f"{', '.join(other)} were loaded in another currency. Reload them with "
                f"--force --start {other[0]} --end {other[-1]} (or drop the currency setting), "
                "so that its LTV never adds up two currencies."
            )


def backfill(
    settings: Settings,
    *,
    months: Sequence[str],
    instance: DagsterInstance,
    property_ids: Sequence[str] | None = None,
    parallel: int = 1,
    force: bool = False,
) -> BackfillReport:
    """Land every property-month not yet final in the warehouse, then rebuild the LTV marts."""
    _check_months(settings, months)
    fail_orphaned_runs(instance)
    report = BackfillReport()
    states = load_states(settings.duckdb_path)
    _check_currencies(settings, states, months=months, force=force)
    done = set() if force else finished_partitions(states, RAW_REPORTS)
    todo = []
    for property_id in property_ids or settings.property_ids:
        # Months before a property's own start month (e.g. before it existed) are not wanted.
        start = settings.for_property(property_id).start_month or ""
        for month in months:
            if (property_id, month) in done:
                report.skipped.append((property_id, month))
            elif month < start:
                report.before_start.append((property_id, month))
            else:
                todo.append((property_id, month))
    if report.skipped:
        log.info("skipping %d partitions already loaded final", len(report.skipped))
    if report.before_start:
        log.info("skipping %d partitions before their property's start month",
                 len(report.before_start))  # fmt: skip
    for outcome in _run_partitions(settings, todo, instance=instance, parallel=parallel):
        key = (outcome.property_id, outcome.month)
        if outcome.error:
            report.failed[key] = outcome.error
            log.error("property %s month %s failed: %s", *key, outcome.error)
        else:
            report.landed.append(key)
        report.failed_checks.extend(outcome.failed_checks)
    if report.landed or not report.failed:
        result = (
            build_definitions(settings)
            .resolve_job_def(LTV_JOB)
            .execute_in_process(
                instance=instance, run_config=_QUIET, raise_on_error=False, tags=_process_tags()
            )
        )
        if _interrupted(result):
            raise KeyboardInterrupt
        built = {event.step_key for event in result.get_step_success_events()}
        report.ltv_built = LTV_STEP in built
        if not result.success:
            report.ltv_error = _failure_message(result)
        report.failed_checks.extend(_failed_checks(result, "LTV"))
    for failed_check in report.failed_checks:
        log.warning("check failed: %s", failed_check)
    if report.failed or report.ltv_error:
        raise BackfillError(_failure_summary(report, todo), ltv_built=report.ltv_built)
    return report


def _failure_summary(report: BackfillReport, todo: list[tuple[str, str]]) -> str:
    """What failed, what was kept, and that the same command resumes."""
    lines = [f"property {p} month {m}: {error}" for (p, m), error in report.failed.items()]
    attempted = set(report.landed) | set(report.failed)
    not_attempted = [key for key in todo if key not in attempted]
    if not_attempted:
        lines.append(
            "not attempted after their property failed: "
            + ", ".join(f"{p} {m}" for p, m in not_attempted)
        )
    if report.ltv_error:
        what = "publishing the LTV tables" if report.ltv_built else "building the LTV tables"
        lines.append(f"{what} failed: {report.ltv_error}")
    step = "publishing" if report.ltv_built else "building the LTV tables"
    if report.failed:
        head = f"{len(report.failed)} partition(s) failed; {len(report.landed)} landed."
    elif report.landed:
        head = f"All {len(report.landed)} partition(s) landed, but {step} failed."
    else:
        head = f"No partition needed loading, but {step} failed."
    return (
        f"{head} What landed is kept; once the cause below is dealt with, the same command "
        "resumes where this one stopped.\n" + "\n".join(lines)
    )


def _run_partitions(
    settings: Settings,
    todo: list[tuple[str, str]],
    *,
    instance: DagsterInstance,
    parallel: int,
):
    """Yield outcomes; after a property fails, its later months are not attempted."""
    failed_properties: set[str] = set()
    if parallel <= 1:
        # One process lands every partition: runs share GA clients, and each asks ahead for
        # the partition after it.
        with shared_ga4_clients():
            for index, (property_id, month) in enumerate(todo):
                if property_id in failed_properties:
                    continue
                following = [key for key in todo[index + 1 :] if key[0] not in failed_properties]
                outcome = _land_partition(
                    settings,
                    property_id,
                    month,
                    instance,
                    next_key=following[0] if following else None,
                )
                if outcome.error:
                    failed_properties.add(property_id)
                yield outcome
        return
    instance_ref = None if instance.is_ephemeral else instance.get_ref()
    context = multiprocessing.get_context("spawn")
    pending = list(todo)
    running: dict[Future[_Outcome], str] = {}
    with ProcessPoolExecutor(
        max_workers=parallel, mp_context=context, initializer=_ignore_ctrl_c_between_runs
    ) as pool:
        while pending or running:
            while pending and len(running) < parallel:
                busy = Counter(running.values())
                index = next(
                    (i for i, (p, _) in enumerate(pending) if busy[p] < RUNS_PER_PROPERTY), None
                )
                if index is None:
                    break
                property_id, month = pending.pop(index)
                if property_id in failed_properties:
                    continue
                future = pool.submit(
                    _land_partition_in_worker, settings, property_id, month, instance_ref
                )
                running[future] = property_id
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                outcome = future.result()
                if outcome.error:
                    failed_properties.add(outcome.property_id)
                yield outcome
