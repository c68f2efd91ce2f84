"""Dagster resources: the GA4 connection and the DuckDB warehouse, configured from settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from connectors.auth import build_client
from connectors.ga4_client import Ga4Reports
from pipelines.settings import EMBEDDED_MONTHS, EMBEDDED_PROPERTY_ID, Settings

if TYPE_CHECKING:
    from warehouse.publish_postgres import PostgresTarget

_embedded_lock = threading.Lock()
_embedded_address: str | None = None


def embedded_emulator_address(now: datetime) -> str:
    """Start (once per process) the emulator that serves the generated demo property."""
    global _embedded_address
    with _embedded_lock:
        if _embedded_address is None:
            from connectors.emulator.generated import generate_property
            from connectors.emulator.server import EmulatorOptions, EmulatorServer

            prop = generate_property(
                property_id=EMBEDDED_PROPERTY_ID,
                months=EMBEDDED_MONTHS,
                end=now.date() - timedelta(days=1),
            )
            server = EmulatorServer([prop], options=EmulatorOptions(clock=lambda: now))
            _embedded_address = server.start()
        return _embedded_address


_shared_lock = threading.Lock()
_shared_depth = 0
_shared_clients: dict[tuple[object, ...], Ga4Reports] = {}


@contextmanager
def shared_ga4_clients() -> Iterator[None]:
    """Within the block, runs in this process share one GA client per property and source.

    A backfill lands partition after partition in one process: sharing asks GA for metadata
    and compatibility once, and lets a run take up what the run before fetched ahead for it.
    Outside the block each run builds its own client, as Dagster's own runs do.
    """
    global _shared_depth
    with _shared_lock:
        _shared_depth += 1
    try:
        yield
    finally:
        with _shared_lock:
            _shared_depth -= 1
            closing = list(_shared_clients.values()) if not _shared_depth else []
            if not _shared_depth:
                _shared_clients.clear()
        for reports in closing:
            reports.close()


class Ga4Resource(ConfigurableResource):
    """Where GA4 reports come from: Google, an emulator on loopback, or the embedded one."""

    emulator: str | None = None
    key_file: str | None = None
    transport: str = "grpc"
    embedded: bool = False
    page_size: int = 250_000
    # Reporting currency per property id, passed to GA as currencyCode.
    currencies: dict[str, str] = Field(default_factory=dict)
    # Pretend the current time is this ISO timestamp (replays and tests); unset: the real time.
    as_of: str | None = None

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def reports(self, property_id: str) -> Ga4Reports:
        """The property's client: a new one, or the shared one inside `shared_ga4_clients`."""
        endpoint = embedded_emulator_address(self.now()) if self.embedded else self.emulator
        key = (endpoint, self.key_file, self.transport, self.page_size, property_id)
        with _shared_lock:
            shared = _shared_clients.get(key) if _shared_depth else None
        if shared is not None:
            return shared
        key_file = Path(self.key_file) if self.key_file else None
        client, credentials = build_client(
            endpoint=endpoint,
            key_file=key_file,
            transport=self.transport,  # type: ignore[arg-type]
        )
        reports = Ga4Reports(
            client,
            property_id,
            credentials=credentials,
            endpoint=endpoint,
            page_size=self.page_size,
        )
        with _shared_lock:
            if _shared_depth:
                reports = _shared_clients.setdefault(key, reports)
        return reports


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


class PublishingResource(ConfigurableResource):
    """Where the LTV tables go besides DuckDB, for tools that cannot read it.

    Unset folders come from ``GA_LTV_EXTRACTS_DIR`` / ``GA_LTV_REPORT_DIR`` at run time, else sit
    beside the DuckDB file; ``off`` turns one off. PostgreSQL settings, password included, are
    read from ``GA_LTV_PG_*`` only when a run publishes, so they never enter run config or logs.
    """

    extracts_dir: str | None = None
    report_dir: str | None = None
    # Off for a demo or an export replay: a configured schema holds real figures.
    postgres_enabled: bool = True

    def extracts_path(self, duckdb_path: Path) -> Path | None:
        return _folder(self.extracts_dir, "GA_LTV_EXTRACTS_DIR", duckdb_path.parent / "extracts")

    def report_path(self, duckdb_path: Path) -> Path | None:
        return _folder(self.report_dir, "GA_LTV_REPORT_DIR", duckdb_path.parent / "reports")

    def postgres(self) -> PostgresTarget | None:
        if not self.postgres_enabled:
            return None
        from warehouse.publish_postgres import PostgresTarget  # the driver only when publishing

        return PostgresTarget.from_env()


def _folder(configured: str | None, variable: str, default: Path) -> Path | None:
    value = configured if configured is not None else os.environ.get(variable, "")
    if value.strip().lower() == "off":
        return None
    return Path(value).expanduser() if value.strip() else default


def resources_from(settings: Settings) -> dict[str, ConfigurableResource]:
    return {
        "ga4": Ga4Resource(
            emulator=settings.emulator,
            key_file=str(settings.key_file) if settings.key_file else None,
            transport=settings.transport,
            embedded=settings.embedded,
            page_size=settings.page_size,
            currencies={p.property_id: p.currency for p in settings.properties if p.currency},
            as_of=settings.as_of,
        ),
        "warehouse": WarehouseResource(
            duckdb_path=str(settings.duckdb_path), spool_dir=str(settings.spool)
        ),
        "publishing": publishing_for(settings),
    }


def publishing_for(settings: Settings) -> PublishingResource:
    """A sandboxed run publishes beside its own DuckDB file only; "" means that default."""
    if settings.sandboxed:
        return PublishingResource(extracts_dir="", report_dir="", postgres_enabled=False)
    return PublishingResource()
