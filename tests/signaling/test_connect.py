"""Socket.IO connect: a real python-socketio client is admitted with a good token, refused otherwise."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import socketio

from matching.identity import Role
from pairwire.api.http import TOKENS
from pairwire.app import SIGNALING
from pairwire.tokens import ALGORITHM, TokenService


async def _connect(url: str, auth: object) -> tuple[socketio.AsyncClient, asyncio.Future]:
    client = socketio.AsyncClient(reconnection=False)
    refused: asyncio.Future = asyncio.get_running_loop().create_future()

    @client.event
    async def connect_error(data: object) -> None:
        if not refused.done():
            refused.set_result(data)

    try:
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        pass
    return client, refused


async def test_good_token_connects_and_joins_the_user_room(server) -> None:  # type: ignore[no-untyped-def]
    token = server.app[TOKENS].mint("u-socket", Role.USER)
    client, refused = await _connect(server.url, {"token": token})
    try:
        assert client.connected and not refused.done()
        sio = server.app[SIGNALING].sio
        participants = [sid for sid, _ in sio.manager.get_participants("/", "user:u-socket")]
        assert participants == [client.get_sid()]
        assert server.app[SIGNALING].connected == 1
    finally:
        await client.disconnect()


def _tokens(server) -> dict[str, object]:  # type: ignore[no-untyped-def]
    tokens: TokenService = server.app[TOKENS]
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    return {
        "no auth": None,
        "no token": {},
        "token not a string": {"token": 42},
        "expired": {"token": tokens.mint("u1", Role.USER, ttl=timedelta(minutes=5), now=past)},
        "forged": {"token": TokenService("another-key-" + "y" * 40).mint("u1", Role.USER)},
        "wrong role": {"token": jwt.encode({"sub": "u1", "role": "root", "exp": later}, server.settings.secret, ALGORITHM)},
    }


@pytest.mark.parametrize("kind", ["no auth", "no token", "token not a string", "expired", "forged", "wrong role"])
async def test_bad_tokens_are_refused_with_the_contract_error(server, kind: str) -> None:  # type: ignore[no-untyped-def]
    client, refused = await _connect(server.url, _tokens(server)[kind])
    try:
        assert not client.connected
        data = await asyncio.wait_for(refused, 5)
        # The packet carries {message, data}; Socket.IO clients expose it as err.message and err.data.
        assert data["data"]["code"] == "unauthorized"
        assert data["data"]["message"] == data["message"] and data["message"]
    finally:
        await client.disconnect()


async def test_websocket_compression_is_declined(server) -> None:  # type: ignore[no-untyped-def]
    """Browsers offer permessage-deflate; the server answers without it (memory and CPU per client)."""
    import aiohttp

    url = f"{server.url}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, compress=15) as ws:
            assert ws.compress == 0
            assert "Sec-WebSocket-Extensions" not in ws._response.headers
            opening = await ws.receive_str(timeout=5)
            assert opening.startswith("0{")  # engine.io's open packet: the connection works
