"""A real Socket.IO client for tests: signs in as a guest, records every event it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio


@dataclass
class Received:
    event: str
    data: Any


@dataclass
class SocketUser:
    """One user with one socket; `events` is everything the server sent, in order."""

    base_url: str
    token: str
    user_id: str
    display_name: str
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    events: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def connect(self) -> None:
        async def record(event: str, data: Any = None) -> None:
            async with self._changed:
                self.events.append(Received(event, data))
                self._changed.notify_all()

        self.sio.on("*", record)
        await self.sio.connect(self.base_url, auth={"token": self.token}, transports=["websocket"], wait_timeout=5)

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict[str, Any]:
        """Emit with an acknowledgement and return it."""
        return await self.sio.call(event, data if data is not None else {}, timeout=timeout)

    async def wait_for(self, event: str, where: Callable[[Any], bool] = lambda d: True, timeout: float = 10) -> Any:
        """The first received `event` whose data satisfies `where`, waiting for it if needed."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: any(r.event == event and where(r.data) for r in self.events)), timeout
            )
        return next(r.data for r in self.events if r.event == event and where(r.data))

    def received(self, event: str) -> list[Any]:
        """Every `event` received so far."""
        return [r.data for r in self.events if r.event == event]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def sign_in(base_url: str, name: str, topics: list[str] | None = None, seniority: str | None = None) -> SocketUser:
    """A guest user, connected."""
    body: dict[str, Any] = {"displayName": name, "topics": topics or []}
    if seniority:
        body["seniority"] = seniority
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/auth/guest", json=body) as response:
            answer = await response.json()
            assert response.status == 201, answer
    client = SocketUser(base_url, answer["token"], answer["user"]["id"], name)
    await client.connect()
    return client
