"""A second emulator on a taken port must fail loudly, not share the port with the first."""

from __future__ import annotations

import pytest

from connectors.emulator.dataset import PropertyData
from connectors.emulator.server import EmulatorServer, PortInUseError


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_a_taken_grpc_port_is_refused(small_property: PropertyData) -> None:
    with EmulatorServer([small_property]) as first:
        port = _port(first.address)
        second = EmulatorServer([small_property], port=port)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            second.start()
        second.stop()  # nothing was started: a no-op


def test_a_taken_rest_port_is_refused(small_property: PropertyData) -> None:
    with EmulatorServer([small_property], rest_port=0) as first:
        rest_port = _port(first.rest_address)
        second = EmulatorServer([small_property], rest_port=rest_port)
        with pytest.raises(PortInUseError, match=f"REST port {rest_port}"):
            second.start()
        # The failed server let go of its gRPC port again.
        with pytest.raises(RuntimeError, match="has not been started"):
            second.address  # noqa: B018


def test_grpc_cannot_take_a_port_rest_holds(small_property: PropertyData) -> None:
    with EmulatorServer([small_property], rest_port=0) as first:
        rest_port = _port(first.rest_address)
        with pytest.raises(PortInUseError, match="gRPC port"):
            EmulatorServer([small_property], port=rest_port).start()
