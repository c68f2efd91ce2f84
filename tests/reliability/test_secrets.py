"""No secret leaves the process: a recognisable fake service account key and PostgreSQL
passwords are searched for in everything a run produces, when it succeeds and when the key or
the server is refused: stdout and stderr, Python logging, exception chains, Dagster's event
log, run config and materialization metadata, and every file under the data folder."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster import DagsterInstance, serialize_value

from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorServer
from pipelines.runner import BackfillError, backfill
from pipelines.settings import Settings
from tests.pipelines.support import emulator_settings
from tests.publishing.conftest import FAKE_PASSWORD, PgDatabase
from tests.publishing.services import free_loopback_port
from tests.reliability.conftest import Tally

PROPERTY_ID = "840001"
MONTHS = ["2023-01", "2023-02"]
KEY_MARKER = "FAKEKEYMATERIALWombat9931"
READER_PASSWORD = "Fake-Reader-Pass-Narwhal-4420"
DSN_PASSWORD = "Fake-Dsn-Pass-Ibex-6062"
# A real key, made here, for runs where the key file is checked and must parse.
GENERATED_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)
PEM_LINE = GENERATED_PEM.splitlines()[5]  # 64 characters of key material
SECRETS = (KEY_MARKER, PEM_LINE, FAKE_PASSWORD, READER_PASSWORD, DSN_PASSWORD)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    prop = generate_property(
        property_id=PROPERTY_ID, seed=9, months=2, users=1_500, end=date(2023, 2, 28)
    )
    with EmulatorServer([prop]) as server:
        yield server.address


def _key_file(folder: Path, *, parseable: bool) -> Path:
    """A service account key with recognisable material: a generated key that parses, or a
    marker that does not. Either way its token URI is a closed loopback port."""
    fake = f"-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n"
    key = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": KEY_MARKER,
        "private_key": GENERATED_PEM if parseable else fake,
        "client_email": "reader@fake-project.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:9/token",  # never reached: the emulator takes no token
    }
    path = folder / "key.json"
    path.write_text(json.dumps(key))
    path.chmod(0o600)
    return path


def _settings(folder: Path, *, emulator: str | None) -> Settings:
    """Against the emulator the key is checked but not sent; without it, it is refused."""
    key_file = _key_file(folder.parent, parseable=emulator is not None)
    return emulator_settings(emulator, folder, [PROPERTY_ID], MONTHS[0], key_file=key_file)


def _run(settings: Settings, dagster_home: Path) -> tuple[list[str], BaseException | None]:
    """Backfill with a persistent instance; returns everything Dagster recorded, and the error."""
    dagster_home.mkdir(parents=True)
    error: BaseException | None = None
    with DagsterInstance.local_temp(tempdir=str(dagster_home)) as instance:
        try:
            backfill(settings, months=MONTHS, instance=instance)
        except BackfillError as exc:
            error = exc
        records = []
        for run in instance.get_runs():
            records.append(serialize_value(run))  # run config and tags
            records += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return records, error


def _assert_no_secret(
    texts: list[str], folder: Path, capfd: pytest.CaptureFixture[str], tally: Tally
) -> None:
    out, err = capfd.readouterr()
    everything = [*texts, out, err]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, "the run wrote nothing to search"
    for secret in SECRETS:
        assert not [t for t in everything if secret in t], f"{secret} leaked into output"
        assert not [p for p in files if secret.encode() in p.read_bytes()], f"{secret} in files"
    tally.bad_input("secret searched for in outputs", count=len(SECRETS))


def test_a_successful_run_with_publishing_leaks_nothing(
    emulator: str,
    pg: PgDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tally: Tally,
) -> None:
    env = pg.env(GA_LTV_PG_READER_ROLE=pg.reader_role, GA_LTV_PG_READER_PASSWORD=READER_PASSWORD)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    records, error = _run(_settings(data, emulator=emulator), data / "dagster")
    assert error is None
    published = [r for r in records if "publish_postgres" in r and "ASSET_MATERIALIZATION" in r]
    assert published, "PostgreSQL publishing did not run"
    _assert_no_secret([*records, caplog.text], data, capfd, tally)


def test_a_refused_key_leaks_nothing(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tally: Tally,
) -> None:
    data = tmp_path / "data"
    records, error = _run(_settings(data, emulator=None), data / "dagster")
    assert isinstance(error, BackfillError)
    assert "cannot be parsed" in str(error)
    chain = "".join(traceback.format_exception(error))
    _assert_no_secret([*records, caplog.text, chain], data, capfd, tally)


def test_an_unreachable_postgres_leaks_nothing(
    emulator: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tally: Tally,
) -> None:
    port = free_loopback_port()  # nothing listens there
    monkeypatch.setenv("GA_LTV_PG_DSN", f"postgresql://publisher:{DSN_PASSWORD}@127.0.0.1:{port}/x")
    monkeypatch.setenv("GA_LTV_PG_PASSWORD", FAKE_PASSWORD)
    monkeypatch.setenv("GA_LTV_PG_READER_PASSWORD", READER_PASSWORD)
    monkeypatch.setenv("GA_LTV_REPORT_DIR", "off")  # the first test covers the report
    data = tmp_path / "data"
    records, error = _run(_settings(data, emulator=emulator), data / "dagster")
    assert isinstance(error, BackfillError)
    assert f"127.0.0.1:{port}" in str(error)
    assert str(error).startswith("All 2 partition(s) landed, but publishing failed.")
    assert error.ltv_built, "the LTV tables were built before publishing failed"
    chain = "".join(traceback.format_exception(error))
    _assert_no_secret([*records, caplog.text, chain], data, capfd, tally)
