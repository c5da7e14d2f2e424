"""Opt-in control over which local addresses aioice (aiortc's ICE agent) uses.

By default aioice gathers one host candidate per address returned by
``aioice.ice.get_host_addresses()``: every non-loopback IPv4 address and every
global IPv6 address of the machine, never 127.0.0.1. Tests and the bot's
loopback mode need the opposite: *only* 127.0.0.1, so that no ICE packet is
ever sent to another machine.

``restrict_host_addresses()`` gives that, scoped to a context:

* The first use replaces ``aioice.ice.get_host_addresses`` (a module global that
  ``Connection.gather_candidates()`` looks up on every call) with a wrapper.
  The wrapper reads a ``ContextVar``: unset, it calls the original function, so
  code that never opts in behaves exactly as stock aioice.
* Inside ``with restrict_host_addresses([...]):`` the ContextVar holds the given
  addresses and the wrapper returns those instead. Because it is a ContextVar
  rather than a global, concurrent peers in the same event loop cannot see each
  other's restriction; tasks created inside the block (aiortc gathers in child
  tasks via ``asyncio.gather``) inherit it.

aiortc gathers candidates in ``RTCPeerConnection.setLocalDescription()``, so
that is the call that must run inside the block (``CallPeer(host_addresses=...)``
does this for you).

Two other sources of off-machine traffic, and how they are kept out:

* STUN/TURN: only used if ``RTCConfiguration.iceServers`` lists servers; passing
  ``None`` (or no configuration) makes aiortc fall back to Google's public STUN
  server, so always pass an explicit list.
* mDNS: aioice never announces its own candidates over mDNS, but it *resolves*
  remote ``<uuid>.local`` candidates (browsers hide host IPs this way) with a
  multicast query to 224.0.0.251:5353 on the LAN. ``is_mdns_candidate()`` and
  ``strip_mdns_candidates()`` let a caller drop such candidates before aioice
  sees them; ``CallPeer`` does so whenever host addresses are restricted.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Callable

import aioice.ice
from aioice.mdns import is_mdns_hostname

__all__ = [
    "current_host_addresses",
    "is_mdns_address",
    "is_mdns_candidate",
    "restrict_host_addresses",
    "strip_mdns_candidates",
]

_HostAddressGetter = Callable[[bool, bool], list[str]]

_restricted: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "pairwire_ice_host_addresses", default=None
)
# The function we replaced in aioice.ice, or None while not installed.
_original_get_host_addresses: _HostAddressGetter | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Replacement for ``aioice.ice.get_host_addresses`` honouring the restriction."""
    addresses = _restricted.get()
    if addresses is None:
        assert _original_get_host_addresses is not None
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    # Keep aioice's use_ipv4/use_ipv6 semantics for the addresses we hand it.
    return [
        address
        for address in addresses
        if (use_ipv4 if ipaddress.ip_address(address).version == 4 else use_ipv6)
    ]


def _install() -> None:
    """Wrap ``aioice.ice.get_host_addresses`` once; a no-op afterwards."""
    global _original_get_host_addresses
    if aioice.ice.get_host_addresses is _get_host_addresses:
        return
    _original_get_host_addresses = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _get_host_addresses


def current_host_addresses() -> tuple[str, ...] | None:
    """Return the addresses the current context is restricted to, or None if unrestricted."""
    return _restricted.get()


@contextmanager
def restrict_host_addresses(addresses: Iterable[str]) -> Iterator[tuple[str, ...]]:
    """Make ICE gathering in this context offer host candidates on ``addresses`` only.

    Addresses must be IP literals of local interfaces (e.g. ``["127.0.0.1"]``);
    an address that cannot be bound is skipped by aioice with a log line. An
    empty list means no host candidates at all. Yields the normalised tuple.
    """
    normalised = tuple(str(ipaddress.ip_address(address)) for address in addresses)
    _install()
    token = _restricted.set(normalised)
    try:
        yield normalised
    finally:
        _restricted.reset(token)


def is_mdns_address(address: str) -> bool:
    """Tell whether a candidate address is an mDNS ``<name>.local`` hostname rather than an IP."""
    return is_mdns_hostname(address)


def is_mdns_candidate(candidate: str) -> bool:
    """Tell whether an ICE candidate line's address is an mDNS ``.local`` hostname.

    Accepts ``"candidate:..."``, ``"a=candidate:..."`` or the bare attribute value.
    """
    value = candidate.strip()
    for prefix in ("a=", "candidate:"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    bits = value.split()
    return len(bits) >= 5 and is_mdns_address(bits[4])


def strip_mdns_candidates(sdp: str) -> str:
    """Remove ``a=candidate`` lines with mDNS hostnames from an SDP blob, keeping line endings."""
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not (line.startswith("a=candidate:") and is_mdns_candidate(line))
    )
