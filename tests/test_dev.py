"""dev.py runs commands from the project folder but reads the user's paths from where they are."""

from __future__ import annotations

from pathlib import Path

import pytest

import dev


def test_path_options_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["run", "--export", "rel/e.parquet", "--duckdb=w.duckdb", "--start", "2024-01"]
    assert dev._absolute_paths(args) == [
        "run",
        "--export",
        str(tmp_path / "rel/e.parquet"),
        f"--duckdb={tmp_path / 'w.duckdb'}",
        "--start",
        "2024-01",
    ]


def test_path_variables_become_absolute_from_where_dev_py_is_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """dev.py runs ga-ltv from the project folder, which would read ``w.duckdb`` there."""
    monkeypatch.chdir(tmp_path)
    env = {
        "GA_LTV_DUCKDB": "w.duckdb",
        "GA_LTV_SETTINGS": "conf/ga-ltv.toml",
        "GA_LTV_KEY_FILE": "/keys/sa.json",
        "GA_LTV_EXTRACTS_DIR": "off",
        "GA_LTV_REPORT_DIR": "",
        "GA_LTV_PROPERTIES": "123",
    }
    assert dev._absolute_path_variables(env) == {
        **env,
        "GA_LTV_DUCKDB": str(tmp_path / "w.duckdb"),
        "GA_LTV_SETTINGS": str(tmp_path / "conf/ga-ltv.toml"),
    }


def test_ctrl_c_is_left_to_the_command_and_its_exit_code_passed_on(tmp_path: Path) -> None:
    """The terminal's Ctrl-C reaches dev.py and its command alike: dev.py waits for the command
    to stop its own way and exits with its code, without a traceback of its own."""
    import os
    import signal
    import subprocess
    import sys

    command = (
        "import signal, sys, time; signal.signal(signal.SIGINT, lambda *_: sys.exit(7)); "
        "print('ready', flush=True); time.sleep(30)"
    )
    wrapper = (
        "import os, sys; import dev; "
        f"sys.exit(dev._run([sys.executable, '-c', {command!r}], dict(os.environ)))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", wrapper],
        cwd=Path(dev.__file__).parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 7
    assert "Traceback" not in stderr
