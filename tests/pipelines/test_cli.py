"""The command line: careless input gets one clear line, never a traceback or a silent guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import cli
from pipelines.cli import main
from pipelines.settings import DEMO_DATA_DIR, EXPORT_DATA_DIR, Settings


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # No property configured: `run` must not quietly load the generated demo data.
        (["run", "--start", "2024-01", "--end", "2024-02"], "No GA4 property is configured"),
        (["run", "--start", "2099-01", "--end", "2099-02"], "--end 2099-02 is in the future"),
        (["run", "--start", "2024-02", "--end", "2024-01"], "is after --end"),
        (["run", "--start", "2024-13", "--end", "2024-12"], "YYYY-MM"),
        (["run", "--start", "2020-11", "--end", "2020-12", "--export", "x.parquet",
          "--property-id", "G-123ABC"], "measurement id"),
        (["run", "--start", "2020-11", "--end", "2020-12", "--export", "x.parquet",
          "--time-zone", "Mars/Phobos"], "not an IANA time zone"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code, err = _run(capsys, *argv, "--duckdb", str(tmp_path / "w.duckdb"))
    assert code == 1
    assert err.startswith("ga-ltv: error: ")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "w.duckdb").exists()


def test_unknown_settings_variable_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GA_LTV_PROPERTY", "123")  # the plural is meant
    code, err = _run(capsys, "run", "--start", "2024-01", "--end", "2024-01")
    assert code == 1
    assert "Unknown settings variables ['GA_LTV_PROPERTY']" in err


def test_parallel_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--start", "2024-01", "--end", "2024-01", "--parallel", "0"])
    assert exited.value.code == 2
    assert "--parallel: must be a whole number from 1" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_demo", interrupted)
    code, err = _run(capsys, "demo")
    assert code == 130
    assert "interrupted" in err and "resumes" in err and "Traceback" not in err


def test_emulator_port_taken_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], export_sample: Path
) -> None:
    from datetime import date

    from connectors.emulator.generated import generate_property
    from connectors.emulator.server import EmulatorServer

    prop = generate_property(property_id="9", months=1, users=100, end=date(2024, 1, 31))
    with EmulatorServer([prop]) as holder:
        port = holder.address.rsplit(":", 1)[1]
        code, err = _run(capsys, "emulator", "serve", "--port", port, "--export",
                         str(export_sample))  # fmt: skip
    assert code == 1
    assert f"port {port}" in err and "already in use" in err
    assert "Traceback" not in err


def test_demo_keeps_out_of_a_configured_warehouse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With real properties configured, the demo still lands in its own folder."""
    import pipelines.runner

    landed: list[Path] = []
    monkeypatch.setenv("GA_LTV_PROPERTIES", "123456789")
    monkeypatch.setattr(
        pipelines.runner, "backfill", lambda settings, **_: landed.append(settings.duckdb_path)
    )
    monkeypatch.setattr(cli, "_print_summary", lambda settings: None)
    code, _ = _run(capsys, "demo")
    assert code == 0
    assert landed == [DEMO_DATA_DIR / "ga_ltv.duckdb"]


def test_demo_and_export_runs_never_publish_to_configured_targets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, export_sample: Path
) -> None:
    """A demo or an export replay with real targets configured: its figures go beside its own
    DuckDB file only, never into the dashboards' PostgreSQL schema or extracts folder."""
    import pipelines.runner
    from pipelines.resources import publishing_for

    landed: list[Settings] = []
    monkeypatch.setenv("GA_LTV_PROPERTIES", "123456789")
    monkeypatch.setenv("GA_LTV_DUCKDB", "/srv/ga/real.duckdb")
    monkeypatch.setenv("GA_LTV_PG_DSN", "postgresql://publisher@127.0.0.1:9/dashboards")
    monkeypatch.setenv("GA_LTV_EXTRACTS_DIR", "/srv/looker/extracts")
    monkeypatch.setattr(pipelines.runner, "backfill", lambda settings, **_: landed.append(settings))
    monkeypatch.setattr(cli, "_print_summary", lambda settings: None)
    assert _run(capsys, "demo")[0] == 0
    assert _run(capsys, "run", "--start", "2020-11", "--end", "2020-12",
                "--export", str(export_sample))[0] == 0  # fmt: skip
    demo, export = landed
    assert demo.duckdb_path == DEMO_DATA_DIR / "ga_ltv.duckdb"
    assert export.duckdb_path == EXPORT_DATA_DIR / "ga_ltv.duckdb"
    assert export.spool == EXPORT_DATA_DIR / "spool"
    for settings in landed:
        publishing = publishing_for(settings)
        assert publishing.postgres() is None
        folder = settings.duckdb_path.parent
        assert publishing.extracts_path(settings.duckdb_path) == folder / "extracts"
        assert publishing.report_path(settings.duckdb_path) == folder / "reports"
    real = publishing_for(cli.load_settings())
    assert real.extracts_path(Path("/srv/ga/real.duckdb")) == Path("/srv/looker/extracts")
    assert real.postgres() is not None


def test_a_run_s_stderr_holds_its_steps_not_library_housekeeping(tmp_path: Path) -> None:
    """A first run on a new DAGSTER_HOME migrates Dagster's storage; alembic's INFO lines about
    that are not the user's business, the pipeline's own steps are."""
    import subprocess
    from datetime import date

    from connectors.emulator.generated import generate_property
    from connectors.emulator.server import EmulatorServer
    from tests.pipelines.support import cli_env, cli_run_command

    home = tmp_path / "dagster_home"
    home.mkdir()
    prop = generate_property(property_id="77", months=1, users=200, end=date(2024, 1, 31))
    with EmulatorServer([prop]) as server:
        env = cli_env(server.address, ["77"], tmp_path / "data", "2024-01")
        done = subprocess.run(
            cli_run_command("2024-01", "2024-01"),
            env={**env, "DAGSTER_HOME": str(home), "GA_LTV_EXTRACTS_DIR": "off",
                 "GA_LTV_REPORT_DIR": "off", "GA_LTV_PROPERTIES": "77:Shop Seventy"},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(home.rglob("*.db")), "the run used the persistent instance"
    assert "alembic" not in done.stderr
    assert "property 77 month 2024-01" in done.stderr
    assert "\nproperty 77 Shop Seventy (USD)\n" in done.stdout, "the summary names the label"


def test_the_emulator_command_takes_quota_and_fault_options(
    export_sample: Path, tmp_path: Path
) -> None:
    """`ga-ltv emulator serve` with a one-token daily quota: the first request is answered, the
    next is refused as GA refuses it, so a pipeline can be rehearsed against a GA that says no."""
    import subprocess
    import sys

    from google.analytics.data_v1beta import RunReportRequest
    from google.api_core import exceptions

    from connectors.auth import build_client

    command = [
        sys.executable, "-m", "pipelines.cli", "emulator", "serve", "--port", "0",
        "--export", str(export_sample), "--property-id", "31", "--tokens-per-day", "1",
        "--latency", "0.01", "--fault-seed", "4",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(4)]
        address = lines[0].rsplit(" ", 1)[1].strip()
        assert lines[1].startswith("serving properties/31 ")
        assert lines[2].startswith("quota per property: 1 tokens a day, 40,000 an hour")
        assert lines[3].startswith("faults: UNAVAILABLE 0%, DEADLINE_EXCEEDED 0%, 0.01 s")
        client, _ = build_client(endpoint=address)
        request = RunReportRequest(
            property="properties/31",
            dimensions=[{"name": "date"}],
            metrics=[{"name": "activeUsers"}],
            date_ranges=[{"start_date": "2020-11-01", "end_date": "2020-11-30"}],
        )
        assert client.run_report(request, retry=None).row_count > 0
        with pytest.raises(exceptions.ResourceExhausted, match="tokens per day"):
            client.run_report(request, retry=None)
    finally:
        server.send_signal(2)
        server.communicate(timeout=60)
    assert server.returncode == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--unavailable-rate", "1.5", "must be a fraction from 0 to 1"),
        ("--tokens-per-day", "3000000000", "must be a whole number from 1 to 2147483647"),
        ("--rest-port", "99999", "must be a port from 0"),
        ("--port", "-1", "must be a port from 0"),
        ("--large-users", "0", "must be a whole number from 1"),
    ],
)
def test_emulator_options_out_of_range_are_refused_by_name(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "serve", option, value])
    assert exited.value.code == 2
    assert f"{option}: {message}" in capsys.readouterr().err


def test_emulator_fault_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(
        capsys, "emulator", "serve", "--unavailable-rate", "0.7", "--deadline-exceeded-rate", "0.7"
    )
    assert code == 1 and "add up to more than 1" in err
    args = cli._parser().parse_args(
        ["emulator", "serve", "--unavailable-rate", "0.25", "--concurrent-requests", "3"]
    )
    options = cli.emulator_options(args)
    assert (options.faults.unavailable_rate, options.quota.concurrent_requests) == (0.25, 3)
    assert options.quota.tokens_per_day == 200_000, "unset keeps a standard property's"


@pytest.mark.parametrize("ltv_built", [True, False], ids=["publishing-failed", "build-failed"])
def test_the_ltv_summary_still_shows_when_only_publishing_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ltv_built: bool
) -> None:
    import pipelines.runner
    from pipelines.errors import BackfillError

    def failing(settings: Settings, **_: object) -> None:
        raise BackfillError("publishing the LTV tables failed: ...", ltv_built=ltv_built)

    shown: list[Settings] = []
    monkeypatch.setattr(pipelines.runner, "backfill", failing)
    monkeypatch.setattr(cli, "_print_summary", shown.append)
    code, err = _run(capsys, "demo")
    assert code == 1 and "publishing the LTV tables failed" in err
    assert len(shown) == (1 if ltv_built else 0)


@pytest.mark.parametrize(
    ("command", "clash"),
    [
        (["demo", "--duckdb", "{real}/ga.duckdb"], "warehouse and extracts folder and report"),
        (["demo", "--duckdb", "{real}/other.duckdb"], "extracts folder and report folder"),
        (["run", "--start", "2020-11", "--end", "2020-12", "--export", "{sample}",
          "--duckdb", "{real}/replay.duckdb"], "extracts folder"),
    ],
)  # fmt: skip
def test_a_demo_or_replay_put_beside_the_real_warehouse_is_refused(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    export_sample: Path,
    command: list[str],
    clash: str,
) -> None:
    """Publishing beside its own file would still land in the configured folders here."""
    import pipelines.runner

    real = tmp_path / "real"
    monkeypatch.setenv("GA_LTV_PROPERTIES", "123456789")
    monkeypatch.setenv("GA_LTV_DUCKDB", str(real / "ga.duckdb"))
    landed: list[Settings] = []
    monkeypatch.setattr(pipelines.runner, "backfill", lambda settings, **_: landed.append(settings))
    argv = [part.format(real=real, sample=export_sample) for part in command]
    code, err = _run(capsys, *argv)
    assert code == 1 and "configured properties'" in err and clash in err
    assert landed == [] and not real.exists()


def test_a_publish_failure_with_nothing_to_load_is_worded_as_such() -> None:
    from pipelines.runner import BackfillReport, _failure_summary

    report = BackfillReport(skipped=[("1", "2024-01")], ltv_built=True, ltv_error="refused")
    assert _failure_summary(report, []).startswith(
        "No partition needed loading, but publishing failed."
    )
    report.landed.append(("1", "2024-02"))
    assert _failure_summary(report, []).startswith("All 1 partition(s) landed, but publishing")
