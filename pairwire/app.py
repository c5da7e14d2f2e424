"""Application assembly: settings in, a running aiohttp app with REST, Socket.IO and the web client out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from aiohttp import web
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from matching.calls import CallService, CallSettings
from matching.clock import Clock, SystemClock
from matching.ice import IceConfig
from matching.moderation import ModerationService, ModerationSettings
from matching.policy import WaitingPool
from matching.queue import LocalQueue
from matching.store.activity import mark_all_offline
from matching.store.database import create_engine, session_factory
from matching.store.matches import close_open_matches
from matching.store.migrate import alembic_config
from matching.store.types import utcnow
from signaling.handlers import CallHandlers, SocketNotifier
from signaling.server import SignalingServer

from .api import activity as activity_routes
from .api import auth, health, openapi
from .api import calls as call_routes
from .api import flags as flag_routes
from .api import matches as match_routes
from .api.http import METRICS, TOKENS, request_context
from .api.store import CALLS, ENGINE, SESSIONS
from .metrics import Metrics
from .settings import Settings
from .tokens import token_service

log = structlog.get_logger("pairwire.app")

SIGNALING: web.AppKey[SignalingServer] = web.AppKey("signaling", SignalingServer)
HANDLERS: web.AppKey[CallHandlers] = web.AppKey("handlers", CallHandlers)
HEARTBEAT: web.AppKey[asyncio.Task[None]] = web.AppKey("heartbeat", asyncio.Task)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEB_DIR = ROOT / "web"
# Front-end libraries come from npm (package.json), served as installed, never copied in.
VENDOR = {
    "socket.io": ROOT / "node_modules" / "socket.io-client" / "dist",
    "chart.js": ROOT / "node_modules" / "chart.js" / "dist",
}


class NotMigrated(RuntimeError):
    """The database schema is behind the code; `pairwire migrate` brings it up."""


def build_app(settings: Settings, *, db_schema: str | None = None, clock: Clock | None = None) -> web.Application:
    """The whole server as one aiohttp application (not started)."""
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    tokens = token_service(settings)
    metrics = Metrics()
    app[TOKENS] = tokens
    app[METRICS] = metrics
    engine = create_engine(settings.resolved_database_url, schema=db_schema)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)

    signaling = SignalingServer(
        verify=tokens.verify,
        on_refused=lambda code: metrics.socket_refusals.labels(code).inc(),
    )
    metrics.sockets_connected.set_function(lambda: signaling.connected)
    signaling.attach(app)
    app[SIGNALING] = signaling
    calls_clock = clock or SystemClock()
    calls = CallService(
        db=app[SESSIONS],
        notifier=SocketNotifier(signaling),
        clock=calls_clock,
        settings=CallSettings(
            join_timeout=settings.join_timeout_seconds,
            disconnect_grace=settings.disconnect_grace_seconds,
            chat_rate=settings.chat_rate,
            ice=IceConfig(tuple(settings.ice_servers), settings.turn_secret, settings.turn_ttl_seconds),
        ),
        queue=LocalQueue(WaitingPool(fallback_after=settings.match_fallback_seconds)),
    )
    app[CALLS] = calls
    app[HANDLERS] = CallHandlers(signaling, calls)
    heartbeat_seconds = settings.heartbeat_seconds

    auth.add_routes(app, guest_login=settings.guest_login)
    call_routes.add_routes(app)
    flag_routes.add_routes(
        app,
        ModerationService(
            db=app[SESSIONS], clock=calls_clock, calls=calls,
            settings=ModerationSettings(flags_per_hour=settings.flags_per_hour),
        ),
    )
    activity_routes.add_routes(app)
    match_routes.add_routes(app)
    health.add_routes(app)
    openapi.add_routes(app)
    _add_web_client(app, settings.web_dir or DEFAULT_WEB_DIR)

    app.on_startup.append(_check_schema_and_recover)

    async def start_heartbeat(app: web.Application) -> None:
        app[HEARTBEAT] = asyncio.get_running_loop().create_task(app[HANDLERS].heartbeat_forever(heartbeat_seconds))

    app.on_startup.append(start_heartbeat)
    app.on_shutdown.append(_close_open_work)
    app.on_cleanup.append(_dispose_engine)
    return app


def _add_web_client(app: web.Application, web_dir: Path) -> None:
    if not (web_dir / "index.html").exists():
        log.warning("no web client", web_dir=str(web_dir))
        return

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(web_dir / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", web_dir, follow_symlinks=False)
    for name, directory in VENDOR.items():
        if directory.is_dir():
            app.router.add_static(f"/vendor/{name}/", directory, follow_symlinks=False)
        else:
            log.warning("a front-end package is not installed (npm ci)", package=name, path=str(directory))


async def _check_schema_and_recover(app: web.Application) -> None:
    engine = app[ENGINE]
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    async with engine.connect() as conn:
        current = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    if current != script.get_current_head():
        raise NotMigrated(
            f"the database is at revision {current or 'none'}, the code needs {script.get_current_head()}: "
            "run `pairwire migrate` first"
        )
    # A previous run that died cannot have closed its matches: close them now, with an end time.
    async with app[SESSIONS].begin() as session:
        closed = await close_open_matches(session, now=utcnow())
        await mark_all_offline(session, utcnow())
    if closed:
        log.warning("closed matches left open by a previous run", count=closed)


async def _close_open_work(app: web.Application) -> None:
    app[HEARTBEAT].cancel()
    # Tell clients first, so nobody keeps talking to a process that is going away.
    await app[SIGNALING].close()
    await app[CALLS].close()
    try:
        async with app[SESSIONS].begin() as session:
            closed = await close_open_matches(session, now=utcnow())
            await mark_all_offline(session, utcnow())
    except Exception:
        # The database is gone: the next start closes what is still open.
        log.exception("shutdown: could not close open matches")
        return
    log.info("shutdown: open matches closed", count=closed)


async def _dispose_engine(app: web.Application) -> None:
    await app[ENGINE].dispose()
