"""GET /api/matches/{id}/messages: the chat of a match, for its two people and moderators."""

from __future__ import annotations

import aiohttp

from matching.identity import Role
from pairwire.api.http import TOKENS
from tests.support.clients import sign_in


async def _get(url: str, token: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(url) as r:
            return r.status, await r.json()


async def test_transcript(server) -> None:  # type: ignore[no-untyped-def]
    ann = await sign_in(server.url, "Ann", ["rust"])
    bob = await sign_in(server.url, "Bob", ["rust"])
    eve = await sign_in(server.url, "Eve", [])
    try:
        await ann.call("queue:join", {"mode": "text"})
        match_id = (await bob.call("queue:join", {"mode": "text"}))["matchId"]
        first = await ann.call("chat:send", {"matchId": match_id, "text": "<i>hi</i>"})
        second = await bob.call("chat:send", {"matchId": match_id, "text": "hello"})
        url = f"{server.url}/api/matches/{match_id}/messages"
        status, body = await _get(url, bob.token)
        assert status == 200
        assert body["messages"] == [
            {"id": first["message"]["id"], "from": ann.user_id, "text": "<i>hi</i>", "sentAt": first["message"]["sentAt"]},
            {"id": second["message"]["id"], "from": bob.user_id, "text": "hello", "sentAt": second["message"]["sentAt"]},
        ]
        assert (await _get(url, eve.token))[0] == 404
        moderator = server.app[TOKENS].mint("mod-9", Role.MODERATOR)
        assert (await _get(url, moderator))[1] == body
        assert (await _get(f"{server.url}/api/matches/nope/messages", moderator))[0] == 404
    finally:
        for user in (ann, bob, eve):
            await user.close()
