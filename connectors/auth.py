"""Build the official GA4 Data API client for Google or for a local emulator.

The same `BetaAnalyticsDataClient` serves both, so the emulator exercises the exact code path
a real property does. Credentials come from a service account key file or from Application
Default Credentials; errors name the file but never echo what is in it.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Literal

import google.auth
import grpc
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports import (
    BetaAnalyticsDataGrpcTransport,
)
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import DefaultCredentialsError
from google.oauth2 import service_account

from connectors.errors import CredentialsError

Transport = Literal["grpc", "rest"]

READONLY_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
# Large report pages are tens of megabytes; gRPC's 4 MiB default would refuse them.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024


def is_loopback(endpoint: str) -> bool:
    """True for `127.x.x.x:port`, `localhost:port` or `[::1]:port` (with or without http://)."""
    host = endpoint.removeprefix("http://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_service_account(key_file: Path) -> service_account.Credentials:
    """Read a service account key file, saying precisely why it cannot be used."""
    path = Path(key_file).expanduser()
    if not path.is_file():
        raise CredentialsError(f"Key file {path} does not exist or is not a file.")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"Key file {path} cannot be read: {type(exc).__name__}.") from None
    except json.JSONDecodeError:
        raise CredentialsError(
            f"Key file {path} is not JSON. Download a service account key (JSON) from the "
            "Google Cloud console: IAM > Service accounts > Keys."
        ) from None
    if not isinstance(info, dict):
        raise CredentialsError(f"Key file {path} is JSON but not a key object.")
    kind = info.get("type")
    if kind != "service_account":
        hint = (
            " It looks like an OAuth user credential; use a service account key, or leave the "
            "key file unset to use Application Default Credentials."
            if kind == "authorized_user"
            else ""
        )
        raise CredentialsError(
            f"Key file {path} is not a service account key (its type is {kind!r}).{hint}"
        )
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise CredentialsError(f"Key file {path} lacks the fields {', '.join(missing)}.")
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=[READONLY_SCOPE])
    except (ValueError, TypeError) as exc:
        # The library's message may quote key material; keep only the exception type.
        raise CredentialsError(
            f"Key file {path} has a private key that cannot be parsed ({type(exc).__name__})."
        ) from None


def identity_of(credentials: Credentials | None) -> str:
    """The email GA needs to grant access to, when the credentials know it."""
    email = getattr(credentials, "service_account_email", None)
    return email if isinstance(email, str) and "@" in email else "the credentials in use"


def build_client(
    *,
    endpoint: str | None = None,
    key_file: Path | None = None,
    transport: Transport = "grpc",
) -> tuple[BetaAnalyticsDataClient, Credentials | None]:
    """Return the official client and the credentials it uses.

    `endpoint` set means a local emulator: plain text on loopback only, no credentials, so no
    secret ever travels unencrypted. A key file given with it is still checked, so a rehearsal
    against the emulator finds a bad key before the first run against Google does. Unset means
    Google, with a key file or ADC.
    """
    if endpoint:
        if not is_loopback(endpoint):
            raise CredentialsError(
                f"Emulator endpoint {endpoint!r} is not a loopback address; unencrypted "
                "connections are only made to 127.0.0.1, localhost or [::1]."
            )
        if key_file is not None:
            load_service_account(key_file)  # checked, never sent
        return _emulator_client(endpoint, transport), None
    if key_file is not None:
        credentials: Credentials = load_service_account(key_file)
    else:
        try:
            credentials, _ = google.auth.default(scopes=[READONLY_SCOPE])
        except DefaultCredentialsError:
            raise CredentialsError(
                "No GA4 credentials: set GA_LTV_KEY_FILE to a service account key file, or run "
                "`gcloud auth application-default login` for Application Default Credentials."
            ) from None
    return BetaAnalyticsDataClient(credentials=credentials, transport=transport), credentials


def _emulator_client(endpoint: str, transport: Transport) -> BetaAnalyticsDataClient:
    if transport == "rest":
        url = endpoint if endpoint.startswith("http://") else f"http://{endpoint}"
        return BetaAnalyticsDataClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=url),
        )
    channel = grpc.insecure_channel(
        endpoint.removeprefix("http://"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    return BetaAnalyticsDataClient(transport=BetaAnalyticsDataGrpcTransport(channel=channel))
