"""Shared fixtures: real databases and real servers on loopback ports.

PostgreSQL and Redis are the machine's real services. Without them the tests that need them
skip with the reason, except under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from matching.clock import Clock
from matching.store.database import create_engine
from matching.store.migrate import upgrade
from pairwire.app import build_app
from pairwire.settings import Settings

if TYPE_CHECKING:
    from tests.support.processes import Server

POSTGRES_URL = os.environ.get("PAIRWIRE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(what: str) -> None:
    """Skip, or under CI=true fail: CI must run every test."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not reachable", pytrace=False)
    pytest.skip(f"{what} is not reachable on this machine")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server's URL, or a skip (a failure under CI)."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    if not _port_open(url.host or "127.0.0.1", url.port or 5432):
        service_missing(f"PostgreSQL at {url.host}:{url.port}")
    return POSTGRES_URL


@dataclass
class Database:
    """A migrated, empty database for one test."""

    kind: str
    url: str
    schema: str | None
    engine: AsyncEngine


async def _postgres_schema(postgres_url: str) -> str:
    schema = f"pw_test_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url)
    try:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.dispose()
    return schema


async def _drop_postgres_schema(postgres_url: str, schema: str) -> None:
    admin = create_engine(postgres_url)
    try:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
async def empty_db(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """An unmigrated database of `db_kind`: a new SQLite file or a new PostgreSQL schema."""
    if db_kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
        engine = create_engine(url)
        yield Database("sqlite", url, None, engine)
        await engine.dispose()
        return
    pg_url = request.getfixturevalue("postgres_url")
    schema = await _postgres_schema(pg_url)
    engine = create_engine(pg_url, schema=schema)
    try:
        yield Database("postgres", pg_url, schema, engine)
    finally:
        await engine.dispose()
        await _drop_postgres_schema(pg_url, schema)


@pytest.fixture
async def db(empty_db: Database) -> Database:
    """A database of each kind, migrated to head."""
    await upgrade(empty_db.engine)
    return empty_db


@dataclass
class RunningServer:
    """A Pairwire server in this process, on an ephemeral loopback port."""

    app: web.Application
    settings: Settings
    url: str
    db: Database


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override to change the settings of the `server` fixture."""
    return {}


@pytest.fixture
def clock() -> Clock | None:
    """Override with a ManualClock to drive the server's timeouts without sleeping."""
    return None


@pytest.fixture
async def server(
    db: Database, tmp_path: Path, settings_overrides: dict[str, object], clock: Clock | None
) -> AsyncIterator[RunningServer]:
    """The real application on 127.0.0.1 with a free port, over the `db` database."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db.url,
        secret="test-secret-" + "x" * 40,
        log_json=True,
        **settings_overrides,
    )
    app = build_app(settings, db_schema=db.schema, clock=clock)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield RunningServer(app, settings, f"http://127.0.0.1:{port}", db)
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Server processes a test starts; any still running at the end are killed."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)
        server._log.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """PAIRWIRE_DATABASE_URL for a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'moved.sqlite3'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"pw_serve_{secrets.token_hex(5)}"
    admin = create_engine(base)
    async with admin.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            )
        await admin.dispose()


