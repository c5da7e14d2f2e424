"""The handles on the layers below that routes reach through the application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from matching.calls import CallService

ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessions", async_sessionmaker)
CALLS: web.AppKey[CallService] = web.AppKey("calls", CallService)
