"""The local servers and programs the publishing tests need: PostgreSQL and headless Chromium.

CI (`.ci/services.sh`) installs both and starts PostgreSQL, passing ``GA_LTV_TEST_PG_DSN``. On a
developer machine with the packages installed, a throwaway server is started here instead, on a
free loopback port in a temporary folder. Missing programs fail the tests under ``CI``; elsewhere
they skip them, saying what to install.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_DSN_ENV = "GA_LTV_TEST_PG_DSN"
CHROMIUM_ENV = "GA_LTV_TEST_CHROMIUM"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def missing(what: str, install: str) -> None:
    """Fail under CI (a missing service must not pass as skipped), skip elsewhere."""
    message = f"{what} is not available; install it ({install}) or run .ci/services.sh"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def find_chromium() -> str | None:
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured
    return next((path for name in _CHROMIUM_NAMES if (path := shutil.which(name))), None)


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_postgres(bin_dir: Path) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this test session; yields a superuser DSN.

    PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user.
    """
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="ga-ltv-pg-"))
    port = free_loopback_port()
    password = secrets.token_urlsafe(16)
    prefix: list[str] = []
    if as_root:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    pwfile.chmod(0o600)
    data = folder / "data"

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        yield f"host=127.0.0.1 port={port} dbname=postgres user=postgres password={password}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
