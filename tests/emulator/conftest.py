"""One generated property served for the whole emulator suite, with a pinned clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient

from connectors.emulator.dataset import PropertyData
from connectors.emulator.generated import generate_property
from connectors.emulator.server import EmulatorOptions, EmulatorServer
from tests.emulator.support import make_client

END = date(2025, 6, 30)
# Noon UTC on 2025-07-01 is morning in New York, so "yesterday" there is END.
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def generated() -> PropertyData:
    return generate_property(end=END)


@pytest.fixture(scope="session")
def small_property() -> PropertyData:
    return generate_property(
        property_id="200002", seed=11, months=24, users=3_000, end=END, time_zone="Asia/Tokyo"
    )


@pytest.fixture(scope="session")
def server(generated: PropertyData, small_property: PropertyData) -> Iterator[EmulatorServer]:
    with EmulatorServer(
        [generated, small_property], options=EmulatorOptions(clock=lambda: NOW)
    ) as s:
        yield s


@pytest.fixture(scope="session")
def client(server: EmulatorServer) -> BetaAnalyticsDataClient:
    return make_client(server.address)
