"""The `pairwire` command as an operator runs it: real processes, real signals, both databases."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from matching.store import users
from matching.store.database import create_engine, session_factory
from matching.store.models import CallMode, Match, MatchStatus
from matching.store.types import utcnow
from tests.support.processes import Server
from tests.support.processes import run_pairwire as _run
from tests.support.processes import server_env as _env
from tests.support.processes import wait_healthy as _wait_healthy

async def _open_match(url: str, *, started: bool) -> str:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as s:
            a = await users.create_user(s, display_name="A", now=utcnow())
            b = await users.create_user(s, display_name="B", now=utcnow())
            match = Match(user1_id=a.id, user2_id=b.id, mode=CallMode.VIDEO,
                          status=MatchStatus.ACTIVE if started else MatchStatus.PENDING,
                          started_at=utcnow() if started else None)
            s.add(match)
        return match.id
    finally:
        await engine.dispose()


async def _read_match(url: str, match_id: str) -> Match:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return (await s.execute(select(Match).where(Match.id == match_id))).scalar_one()
    finally:
        await engine.dispose()


async def test_defaults_serve_health_and_sigterm_closes_open_matches(tmp_path: Path, servers: list[Server]) -> None:
    env = _env(tmp_path)
    migrated = _run(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    db_file = tmp_path / "data" / "pairwire.sqlite3"
    assert db_file.exists()
    server = Server(env, tmp_path)
    servers.append(server)
    assert await _wait_healthy(server.url, server.proc) == {"status": "ok"}

    url = f"sqlite+aiosqlite:///{db_file}"
    match_id = await _open_match(url, started=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz", headers={"X-Request-Id": "req-123"}) as r:
            assert r.headers["X-Request-Id"] == "req-123"
        async with http.get(f"{server.url}/") as r:
            assert r.status == 200 and "Pairwire" in await r.text()
        async with http.get(f"{server.url}/metrics") as r:
            metrics = await r.text()
    assert 'pairwire_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert "pairwire_sockets_connected 0.0" in metrics

    assert server.stop(signal.SIGTERM) == 0
    closed = await _read_match(url, match_id)
    assert closed.status is MatchStatus.ENDED
    assert closed.ended_at is not None and closed.duration is not None
    logs = server.logs()
    assert '"request_id": "req-123"' in logs


async def test_port_and_database_url_move_it(tmp_path: Path, fresh_database_url: str, servers: list[Server]) -> None:
    database_url = fresh_database_url
    env = _env(tmp_path, PAIRWIRE_DATABASE_URL=database_url)
    assert _run(["migrate"], env, tmp_path).returncode == 0
    server = Server(env, tmp_path)
    servers.append(server)
    await _wait_healthy(server.url, server.proc)
    assert not (tmp_path / "data" / "pairwire.sqlite3").exists()
    # A server killed outright cannot close its matches; the next start does, with an end time.
    match_id = await _open_match(database_url, started=False)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    assert (await _read_match(database_url, match_id)).status is MatchStatus.PENDING
    again = Server(env, tmp_path)
    servers.append(again)
    await _wait_healthy(again.url, again.proc)
    reopened = await _read_match(database_url, match_id)
    assert reopened.status is MatchStatus.ENDED and reopened.ended_at is not None and reopened.duration is None
    assert again.stop() == 0


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = _run(["serve"], _env(tmp_path), tmp_path)
    assert result.returncode == 3
    assert "pairwire migrate" in result.stderr


def test_bad_configuration_is_named(tmp_path: Path) -> None:
    result = _run(["serve"], _env(tmp_path, PAIRWIRE_PORT="http"), tmp_path)
    assert result.returncode == 2
    assert "PAIRWIRE_PORT" in result.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["migrate", "--help"], ["token", "--help"], ["bot", "--help"]]
)
def test_help_describes_each_command(tmp_path: Path, args: list[str]) -> None:
    result = _run(args, _env(tmp_path), tmp_path)
    assert result.returncode == 0
    assert "usage: pairwire" in result.stdout
    assert len(result.stdout.splitlines()) > 4


async def test_token_command_mints_an_operator_token_the_server_accepts(tmp_path: Path, servers: list[Server]) -> None:
    env = _env(tmp_path)
    assert _run(["migrate"], env, tmp_path).returncode == 0
    minted = _run(["token", "--user", "mod-1", "--role", "moderator", "--name", "Mo"], env, tmp_path)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    server = Server(env, tmp_path)
    servers.append(server)
    await _wait_healthy(server.url, server.proc)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{server.url}/api/auth/me") as r:
            body = await r.json()
    assert body["user"]["id"] == "mod-1" and body["user"]["role"] == "moderator"
    # The key was generated once and kept: a restart accepts the same token.
    assert server.stop() == 0
    restarted = Server(env, tmp_path)
    servers.append(restarted)
    await _wait_healthy(restarted.url, restarted.proc)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{restarted.url}/api/auth/me") as r:
            assert r.status == 200
    assert restarted.stop() == 0


def test_only_the_bot_command_loads_the_media_stack(tmp_path: Path) -> None:
    code = "import sys; from pairwire.cli import _parser; _parser(); print('media.bot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "False", result.stderr
    bot_help = _run(["bot", "--help"], _env(tmp_path), tmp_path).stdout
    assert "--ice-host" in bot_help and "usage: pairwire bot" in bot_help
