"""Credentials and property ids: each mistake gets an error that says what to do, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.auth import build_client, is_loopback, load_service_account
from connectors.errors import CredentialsError, PropertyIdError
from connectors.ga4_client import normalize_property_id

FAKE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nNOTAREALKEYbutRecognisable1234567890\n-----END"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123456789", "123456789"),
        ("properties/123456789", "123456789"),
        (" 42 ", "42"),
        (987, "987"),
    ],
)
def test_property_id_accepts_both_forms(value: str | int, expected: str) -> None:
    assert normalize_property_id(value) == expected


def test_measurement_id_is_explained() -> None:
    with pytest.raises(PropertyIdError, match=r"measurement id.*numeric property id"):
        normalize_property_id("G-ABC123XYZ")


@pytest.mark.parametrize("value", ["", "properties/", "UA-1234-1", "12ab", "properties/-1"])
def test_malformed_property_id(value: str) -> None:
    with pytest.raises(PropertyIdError, match="not a GA4 property id"):
        normalize_property_id(value)


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def _service_account_key(tmp_path: Path, private_key: str) -> Path:
    info = {
        "type": "service_account",
        "client_email": "loader@example-project.iam.gserviceaccount.com",
        "private_key": private_key,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return _write(tmp_path, "sa.json", json.dumps(info))


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="does not exist"):
        load_service_account(tmp_path / "nope.json")


def test_empty_key_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="not JSON"):
        load_service_account(_write(tmp_path, "empty.json", ""))


def test_key_file_not_json_does_not_echo_content(tmp_path: Path) -> None:
    path = _write(tmp_path, "key.json", FAKE_PRIVATE_KEY)
    with pytest.raises(CredentialsError) as caught:
        load_service_account(path)
    assert "not JSON" in str(caught.value)
    assert "NOTAREALKEY" not in str(caught.value)


def test_user_credentials_where_service_account_expected(tmp_path: Path) -> None:
    user = {"type": "authorized_user", "client_id": "x", "refresh_token": "SECRET-REFRESH"}
    path = _write(tmp_path, "user.json", json.dumps(user))
    with pytest.raises(CredentialsError, match="OAuth user credential") as caught:
        load_service_account(path)
    assert "SECRET-REFRESH" not in str(caught.value)


def test_unparseable_private_key_is_not_echoed(tmp_path: Path) -> None:
    path = _service_account_key(tmp_path, FAKE_PRIVATE_KEY)
    with pytest.raises(CredentialsError, match="cannot be parsed") as caught:
        load_service_account(path)
    assert "NOTAREALKEY" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:1", True),
        ("[::1]:8080", True),
        ("http://127.0.0.2:80", True),
        ("10.0.0.1:50051", False),
        ("analyticsdata.example.com:443", False),
    ],
)
def test_is_loopback(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_emulator_endpoint_must_be_loopback() -> None:
    with pytest.raises(CredentialsError, match="not a loopback address"):
        build_client(endpoint="192.168.1.5:50051")


def test_a_bad_key_file_is_refused_even_against_the_emulator(tmp_path: Path) -> None:
    """Rehearsing on the emulator with the real settings must not hide a key that will fail."""
    path = _write(tmp_path, "key.json", FAKE_PRIVATE_KEY)
    with pytest.raises(CredentialsError, match="not JSON") as caught:
        build_client(endpoint="127.0.0.1:50051", key_file=path)
    assert "NOTAREALKEY" not in str(caught.value)


def test_a_good_key_file_is_checked_but_not_sent_to_the_emulator(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = _service_account_key(tmp_path, pem)
    assert load_service_account(path).service_account_email.startswith("loader@")
    client, credentials = build_client(endpoint="127.0.0.1:50051", key_file=path)
    assert credentials is None
    assert client.transport.__class__.__name__ == "BetaAnalyticsDataGrpcTransport"
