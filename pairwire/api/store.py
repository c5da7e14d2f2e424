"""The store handles the routes reach through the application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessions", async_sessionmaker)
