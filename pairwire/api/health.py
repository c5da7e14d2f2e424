"""Operations: `/healthz` and `/metrics`."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from matching.store.database import ping

from .openapi import operation
from .http import METRICS, json_response
from .store import ENGINE


@operation("200 when the database answers", auth=False, errors=("unavailable",), tag="operations")
async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers within two seconds, 503 otherwise."""
    try:
        await asyncio.wait_for(ping(request.app[ENGINE]), timeout=2.0)
    except Exception as exc:  # any failure to reach the database is "not healthy"
        return json_response(
            {"status": "unavailable", "error": {"code": "unavailable", "message": f"database: {exc!r}"}}, status=503
        )
    return json_response({"status": "ok"})


@operation("Prometheus metrics", auth=False, content_type="text/plain", tag="operations")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    """Register the operations routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
