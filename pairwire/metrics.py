"""Prometheus metrics (prometheus_client), one registry per application."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    """The server's instruments."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "pairwire_http_requests_total", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "pairwire_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=self.registry,
        )
        self.sockets_connected = Gauge(
            "pairwire_sockets_connected", "Socket.IO clients connected to this process", registry=self.registry
        )
        self.socket_refusals = Counter(
            "pairwire_socket_refusals_total", "Socket.IO connections refused", ["code"], registry=self.registry
        )
