#!/usr/bin/env python3
"""Set up the project's virtualenv from its lock file when needed, then run a command in it.

    python3 dev.py demo        # the main job on the embedded GA4 emulator
    python3 dev.py test        # the test suite (extra arguments go to pytest)
    python3 dev.py ui          # the Dagster UI on http://127.0.0.1:3000
    python3 dev.py lock        # rewrite requirements.lock from .venv after a dependency change
    python3 dev.py <args>      # any `ga-ltv` command, e.g. `run --start 2024-01 --end 2024-06`

Only Python 3.11+ is needed; everything else comes from requirements.lock into .venv.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".ga-ltv-installed"
INPUTS = (ROOT / "requirements.lock", ROOT / "pyproject.toml")


def _digest() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in INPUTS)).hexdigest()


def ensure_env() -> None:
    """Create or refresh .venv when the lock file or pyproject changed since the last install."""
    if STAMP.exists() and STAMP.read_text() == _digest():
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print("dev.py: installing dependencies from requirements.lock", file=sys.stderr)
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(_digest())


LOCK_HEADER = (
    "# Pinned dependency set that dev.py installs into .venv.\n"
    "# After changing dependencies in pyproject.toml, install them and run: python3 dev.py lock\n"
)


def write_lock() -> int:
    frozen = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    pins = [line for line in frozen.splitlines() if not line.startswith("ga-ltv")]
    (ROOT / "requirements.lock").write_text(LOCK_HEADER + "\n".join(pins) + "\n")
    return 0


PATH_OPTIONS = ("--duckdb", "--export")
PATH_VARIABLES = (
    "GA_LTV_SETTINGS",
    "GA_LTV_KEY_FILE",
    "GA_LTV_DUCKDB",
    "GA_LTV_SPOOL_DIR",
    "GA_LTV_EXTRACTS_DIR",
    "GA_LTV_REPORT_DIR",
)


def _absolute_paths(args: list[str]) -> list[str]:
    """Commands run from the project folder; paths the user typed are read from where they are."""
    resolved = list(args)
    for i, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if option in PATH_OPTIONS and equals:
            resolved[i] = f"{option}={Path(value).expanduser().absolute()}"
        elif i and args[i - 1] in PATH_OPTIONS:
            resolved[i] = str(Path(arg).expanduser().absolute())
    return resolved


def _absolute_path_variables(env: dict[str, str]) -> dict[str, str]:
    """The same for paths in ``GA_LTV_*`` variables; ``off`` and empty values stay as they are."""
    resolved = dict(env)
    for name in PATH_VARIABLES:
        value = env.get(name, "").strip()
        if value and value.lower() != "off":
            resolved[name] = str(Path(value).expanduser().absolute())
    return resolved


def _run(args: list[str], env: dict[str, str]) -> int:
    """Run the command and return its exit code. Ctrl-C reaches the command too (same process
    group), which stops in its own way and says so; dev.py only waits for it, so no traceback
    of dev.py's own lands on top. A second Ctrl-C stops a command that did not stop."""
    process = subprocess.Popen(args, cwd=ROOT, env=env)
    interrupts = 0
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts > 1:
                process.terminate()


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("dev.py: Python 3.11 or newer is required")
    if argv[:1] == ["lock"]:
        return write_lock()
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(__doc__)
        argv = ["--help"]
    ensure_env()
    env = _absolute_path_variables(
        {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(ROOT))}
    )
    command, *rest = argv or ["demo"]
    if command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    elif command == "ui":
        args = [str(BIN / "dagster"), "dev", "--host", "127.0.0.1", *rest]
    else:
        args = [str(BIN / "ga-ltv"), command, *_absolute_paths(rest)]
    return _run(args, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
