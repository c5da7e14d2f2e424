"""The handles on the layers below that routes reach through the application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from matching.calls import CallService

ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessions", async_sessionmaker)
CALLS: web.AppKey[CallService] = web.AppKey("calls", CallService)


@asynccontextmanager
async def reading(request: web.Request) -> AsyncIterator[AsyncSession]:
    """A session for reading that sees every write handed over before it (activity rows go out in batches)."""
    await request.app[CALLS].writer.flush()
    async with request.app[SESSIONS]() as s:
        yield s
