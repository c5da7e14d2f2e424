"""A flag acknowledged to the client survives `kill -9` of the server right after the answer."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp

from tests.support.clients import sign_in
from tests.support.processes import Server, run_pairwire, server_env, wait_healthy


async def test_flag_survives_a_crash_after_the_response(
    tmp_path: Path, fresh_database_url: str, servers: list[Server]
) -> None:
    env = server_env(tmp_path, PAIRWIRE_DATABASE_URL=fresh_database_url)
    assert run_pairwire(["migrate"], env, tmp_path).returncode == 0
    server = Server(env, tmp_path)
    servers.append(server)
    await wait_healthy(server.url, server.proc)

    ann = await sign_in(server.url, "Ann", ["rust"])
    bob = await sign_in(server.url, "Bob", ["rust"])
    try:
        await ann.call("queue:join", {"mode": "video"})
        match_id = (await bob.call("queue:join", {"mode": "video"}))["matchId"]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ann.token}"}) as http:
            async with http.post(f"{server.url}/api/flags", json={"flaggedUserId": bob.user_id, "matchId": match_id}) as r:
                assert r.status == 201
                flag = (await r.json())["flag"]
            # The answer is in hand: the process dies at once, with no chance to flush anything.
            server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        await ann.close()
        await bob.close()

    again = Server(env, tmp_path)
    servers.append(again)
    await wait_healthy(again.url, again.proc)
    token = run_pairwire(["token", "--user", "mod-1", "--role", "moderator"], env, tmp_path).stdout.strip()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{again.url}/api/flags/{flag['id']}") as r:
            assert r.status == 200
            stored = (await r.json())["flag"]
    assert {k: v for k, v in stored.items() if k not in ("flaggedBy", "flaggedUser")} == flag
    assert again.stop() == 0
