"""/healthz answers 503, in the contract's error shape, when the database stops answering."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from matching.store.database import create_engine
from matching.store.migrate import upgrade
from pairwire.app import build_app
from pairwire.settings import Settings


@pytest.mark.parametrize("fresh_database_url", ["postgres"], indirect=True)
async def test_healthz_follows_the_database(tmp_path: Path, fresh_database_url: str, postgres_url: str) -> None:
    engine = create_engine(fresh_database_url)
    await upgrade(engine)
    await engine.dispose()
    app = build_app(Settings(data_dir=tmp_path, database_url=fresh_database_url, secret="h" * 40))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/healthz"  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert (r.status, await r.json()) == (200, {"status": "ok"})
            # The database goes away under the running server.
            name = fresh_database_url.rsplit("/", 1)[1]
            admin = create_engine(postgres_url)
            async with admin.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql(
                    f'DROP DATABASE "{name}" WITH (FORCE)'
                )
            await admin.dispose()
            async with http.get(url) as r:
                body = await r.json()
                assert r.status == 503
                assert body["status"] == "unavailable" and body["error"]["code"] == "unavailable"
    finally:
        await runner.cleanup()
