"""A backfill killed mid-run leaves its Dagster run STARTED; the next backfill marks it failed,
so the run queue's per-property limit does not keep counting it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from pipelines.runner import HOST_TAG, PID_TAG, _process_tags, fail_orphaned_runs


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(instance: DagsterInstance, run_id: str, tags: dict[str, str]) -> None:
    run = DagsterRun(
        job_name="raw_reports_job", run_id=run_id, status=DagsterRunStatus.STARTED, tags=tags
    )
    instance.add_run(run)


def test_runs_of_killed_processes_are_marked_failed(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.from_config(str(home)) as instance:
        mine = _process_tags()
        _run(instance, "killed", mine | {PID_TAG: str(_dead_pid())})
        _run(instance, "alive", mine)  # this very process
        _run(instance, "elsewhere", {HOST_TAG: "another-machine", PID_TAG: str(_dead_pid())})
        _run(instance, "not ours", {})
        assert fail_orphaned_runs(instance) == 1
        status = {run_id: instance.get_run_by_id(run_id).status
                  for run_id in ("killed", "alive", "elsewhere", "not ours")}  # fmt: skip
    assert status == {
        "killed": DagsterRunStatus.FAILURE,
        "alive": DagsterRunStatus.STARTED,
        "elsewhere": DagsterRunStatus.STARTED,  # its process may well be running there
        "not ours": DagsterRunStatus.STARTED,
    }
