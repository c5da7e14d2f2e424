"""Media tests prove that nothing leaves the machine: every test here runs under this guard."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import aioice.ice
import pytest
from aiortc.rtcicetransport import RTCIceGatherer


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record every UDP/TCP destination and fail on anything off-loopback, STUN defaults or mDNS."""
    destinations: list[Any] = []
    problems: list[str] = []

    def check(address: Any) -> None:
        destinations.append(address)
        host = address[0] if isinstance(address, tuple) else address
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            problems.append(f"traffic to non-loopback {address!r}")
            raise OSError(f"test network guard: refusing to contact {address!r}")

    original_sendto = socket.socket.sendto
    original_connect = socket.socket.connect

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(args[-1])
        return original_sendto(self, data, *args)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return original_connect(self, address)

    def no_default_ice_servers(cls: type) -> list[Any]:
        problems.append("aiortc fell back to its default (public Google) STUN server")
        return []

    async def no_mdns(subscriber: object) -> Any:
        problems.append("aioice tried to resolve an mDNS candidate")
        raise OSError("test network guard: mDNS disabled")

    monkeypatch.setattr(socket.socket, "sendto", guarded_sendto)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(RTCIceGatherer, "getDefaultIceServers", classmethod(no_default_ice_servers))
    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", no_mdns)
    yield destinations
    assert not problems, problems
