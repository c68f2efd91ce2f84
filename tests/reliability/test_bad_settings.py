"""Settings a user gets wrong, run through the CLI: each stops `ga-ltv run` with exit code 1 and
a message saying what to change, and the warehouse file is byte for byte what it was."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.partitions import add_months
from tests.publishing.conftest import build_warehouse
from tests.reliability.conftest import Tally

PROPERTY_ID = "123456789"
FUTURE = add_months(date.today().replace(day=1), 2).strftime("%Y-%m")
# Loaded months are 2024-01 and 2024-02; March must be fetched, so a run gets past the checks.
RUN = ["run", "--start", "2024-03", "--end", "2024-03"]
FAKE_KEY_MARKER = "FAKE-KEY-MATERIAL-Quokka-5512"
USER_KEY = {
    "type": "authorized_user",
    "client_id": "x.apps.googleusercontent.com",
    "client_secret": FAKE_KEY_MARKER,
    "refresh_token": FAKE_KEY_MARKER,
}

# name: (settings file text or None, extra environment, key file bytes or None, CLI arguments,
#        what the message must say)
CASES: dict[str, tuple[str | None, dict[str, str], bytes | None, list[str], str]] = {
    "unknown settings key": ('propertys = "1"\n', {}, None, RUN, "unknown keys ['propertys']"),
    "property without id": (
        '[[properties]]\nlabel = "Shop"\n', {}, None, RUN, "needs `id`"
    ),
    "measurement id": (None, {"GA_LTV_PROPERTIES": "G-1A2B3C4D"}, None, RUN, "measurement id"),
    "property id not a number": (
        None, {"GA_LTV_PROPERTIES": "shop-de"}, None, RUN, "not a GA4 property id"
    ),
    "start after end": (
        None, {}, None, ["run", "--start", "2024-05", "--end", "2024-01"], "is after --end"
    ),
    "month in the future": (
        None, {}, None, ["run", "--start", FUTURE, "--end", FUTURE], "is in the future"
    ),
    "month not YYYY-MM": (None, {}, None, ["run", "--start", "2024-3", "--end", "2024-04"],
                          "YYYY-MM"),
    "start_month not YYYY-MM": (
        None, {"GA_LTV_START_MONTH": "March 2024"}, None, RUN, "YYYY-MM"
    ),
    "missing key file": (None, {}, None, RUN, "does not exist"),
    "empty key file": (None, {}, b"", RUN, "is not JSON"),
    "key file not JSON": (
        None, {}, f"-----BEGIN PRIVATE KEY-----\n{FAKE_KEY_MARKER}\n".encode(), RUN, "is not JSON"
    ),
    "user key instead of service account": (
        None, {}, json.dumps(USER_KEY).encode(), RUN, "use a service account key"
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def warehouse_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("bad_settings_warehouse")
    return build_warehouse(folder / "ga.duckdb", folder / "spool", months=2).read_bytes()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_setting_is_refused_and_nothing_changes(
    case: str,
    warehouse_bytes: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tally: Tally,
) -> None:
    settings_text, extra_env, key_bytes, argv, expected = CASES[case]
    db = tmp_path / "data" / "ga.duckdb"
    db.parent.mkdir()
    db.write_bytes(warehouse_bytes)
    key_file = tmp_path / "key.json"
    if key_bytes is not None:
        key_file.write_bytes(key_bytes)
    env = {
        "GA_LTV_PROPERTIES": PROPERTY_ID,
        "GA_LTV_DUCKDB": str(db),
        "GA_LTV_SPOOL_DIR": str(tmp_path / "data" / "spool"),
        "GA_LTV_START_MONTH": "2024-01",
        "GA_LTV_KEY_FILE": str(key_file),  # no emulator: the key file is what GA would get
        **extra_env,
    }
    if settings_text is not None:
        settings_file = tmp_path / "ga-ltv.toml"
        settings_file.write_text(settings_text)
        env["GA_LTV_SETTINGS"] = str(settings_file)
        del env["GA_LTV_PROPERTIES"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tally.bad_input(f"setting ({case})")

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    error = err[err.index("ga-ltv: error:") :]
    assert expected in error, error
    assert FAKE_KEY_MARKER not in err
    assert db.read_bytes() == warehouse_bytes
    leftovers = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert sorted(p.name for p in leftovers) <= ["ga.duckdb", "ga.duckdb.lock"]
