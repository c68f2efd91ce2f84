"""Dagster resources: the GA4 connection and the DuckDB warehouse, configured from settings."""

from __future__ import annotations

import threading
from pathlib import Path

from dagster import ConfigurableResource

from connectors.auth import build_client
from connectors.ga4_client import Ga4Reports
from pipelines.settings import EMBEDDED_MONTHS, EMBEDDED_PROPERTY_ID, Settings

_embedded_lock = threading.Lock()
_embedded_address: str | None = None


def embedded_emulator_address() -> str:
    """Start (once per process) the emulator that serves the generated demo property."""
    global _embedded_address
    with _embedded_lock:
        if _embedded_address is None:
            from connectors.emulator.generated import generate_property
            from connectors.emulator.server import EmulatorServer

            prop = generate_property(property_id=EMBEDDED_PROPERTY_ID, months=EMBEDDED_MONTHS)
            server = EmulatorServer([prop])
            _embedded_address = server.start()
        return _embedded_address


class Ga4Resource(ConfigurableResource):
    """Where GA4 reports come from: Google, an emulator on loopback, or the embedded one."""

    emulator: str | None = None
    key_file: str | None = None
    transport: str = "grpc"
    embedded: bool = False
    page_size: int = 250_000

    def reports(self, property_id: str) -> Ga4Reports:
        endpoint = embedded_emulator_address() if self.embedded else self.emulator
        key_file = Path(self.key_file) if self.key_file else None
        client, credentials = build_client(
            endpoint=endpoint,
            key_file=key_file,
            transport=self.transport,  # type: ignore[arg-type]
        )
        return Ga4Reports(client, property_id, credentials=credentials, page_size=self.page_size)


class WarehouseResource(ConfigurableResource):
    """The DuckDB file and the folder where report pages wait before they are loaded."""

    duckdb_path: str
    spool_dir: str

    @property
    def path(self) -> Path:
        return Path(self.duckdb_path)

    @property
    def spool(self) -> Path:
        return Path(self.spool_dir)


def resources_from(settings: Settings) -> dict[str, ConfigurableResource]:
    return {
        "ga4": Ga4Resource(
            emulator=settings.emulator,
            key_file=str(settings.key_file) if settings.key_file else None,
            transport=settings.transport,
            embedded=settings.embedded,
        ),
        "warehouse": WarehouseResource(
            duckdb_path=str(settings.duckdb_path), spool_dir=str(settings.spool_dir)
        ),
    }
