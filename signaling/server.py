"""The Socket.IO server: who may connect, and which room reaches a user.

Handlers stay thin; they take a verified identity and call the domain. What must be shared
between server processes (queue, matches) never lives here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import structlog

from matching.errors import PairwireError
from matching.identity import Identity

from . import transport
from .inline import InlineEvents

log = structlog.get_logger("pairwire.signaling")

# The contract reads and answers messages up to 1 MB rather than dropping the connection.
MAX_MESSAGE_BYTES = 1_000_000

Verify = Callable[[str | None], Identity]


def user_room(user_id: str) -> str:
    """The room every socket of one user joins; emits go here, never to a remembered sid."""
    return f"user:{user_id}"


class SignalingServer:
    """python-socketio's AsyncServer with the contract's connect authentication."""

    def __init__(
        self,
        *,
        verify: Verify,
        on_refused: Callable[[str], None] = lambda code: None,
        client_manager: socketio.AsyncManager | None = None,
    ) -> None:
        self._verify = verify
        self._on_refused = on_refused
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=client_manager,
            max_http_buffer_size=MAX_MESSAGE_BYTES + 64 * 1024,
            logger=False,
            engineio_logger=False,
        )
        # The hot events, answered on the reading connection (inline.py), over a websocket
        # transport without per-message tasks and timers (transport.py).
        self.inline = InlineEvents(self.sio)
        transport.install(self.sio.eio, self.inline)
        self.connected = 0
        # Set by the handlers that need to know when a user arrives or goes. on_connect runs
        # before the client is told it is connected (no emits there); on_ready after.
        self.on_connect: Callable[[str, Identity], Awaitable[None]] | None = None
        self.on_ready: Callable[[str, Identity], Awaitable[None]] | None = None
        self.on_disconnected: Callable[[str, Identity], Awaitable[None]] | None = None
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)

    def attach(self, app: Any) -> None:
        """Serve Socket.IO at `/socket.io` on the aiohttp application."""
        self.sio.attach(app, socketio_path="socket.io")

    async def identity(self, sid: str) -> Identity:
        """The verified identity of a connected socket."""
        session = await self.sio.get_session(sid)
        return session["identity"]

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            who = self._verify(token if isinstance(token, str) else None)
        except PairwireError as exc:
            self._on_refused(exc.code)
            log.info("socket refused", code=exc.code, reason=exc.message)
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_error()) from None
        await self.sio.save_session(sid, {"identity": who})
        await self.sio.enter_room(sid, user_room(who.user_id))
        self.connected += 1
        log.info("socket connected", user_id=who.user_id, role=who.role.value)
        if self.on_connect is not None:
            await self.on_connect(sid, who)
        if self.on_ready is not None:
            # Events emitted before python-socketio has sent CONNECT would reach a client that
            # does not yet listen: what emits runs once the socket is connected.
            self.sio.start_background_task(self._when_ready, sid, who)

    async def _when_ready(self, sid: str, who: Identity) -> None:
        for attempt in range(200):
            if self.sio.manager.is_connected(sid, "/"):
                break
            await asyncio.sleep(0 if attempt < 20 else 0.005)
        else:
            return
        assert self.on_ready is not None
        try:
            await self.on_ready(sid, who)
        except Exception:
            log.exception("arrival failed", user_id=who.user_id)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.connected -= 1
        session = await self.sio.get_session(sid)
        who = session.get("identity")
        if who is not None and self.on_disconnected is not None:
            await self.on_disconnected(sid, who)

    async def close(self) -> None:
        """Disconnect every socket of this process and stop Socket.IO's background tasks."""
        # Room None holds every connected socket of the namespace.
        for sid, _eio_sid in list(self.sio.manager.get_participants("/", None)):
            await self.sio.disconnect(sid)
        await self.sio.shutdown()
