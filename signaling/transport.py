"""engine.io's websocket transport on aiohttp, without a task, a queue hop or a timer per message.

python-engineio's aiohttp driver reads each message through a new task under `asyncio.wait_for`
and writes through a per-socket queue drained by a writer task under another `wait_for`: for one
relayed message that is several scheduling steps and timers, about half of the relay's CPU
(docs/performance.md). Here the connection's own request task reads in a plain loop, a packet
is written to the websocket when it is sent, and an optional `intercept` sees each text message
first (the Socket.IO events handled inline, see `inline.py`).

Everything else stays python-engineio's `AsyncSocket`: the open handshake, long-polling,
ping/pong, closing, and the events they trigger. Liveness stays engine.io's too: its ping/pong
and service task close a socket that stops answering, and a socket that closes closes its
websocket, which ends the read loop. The driver plugs in where python-engineio looks up its
websocket class, `server._async["websocket"]`, for one server only (see `install`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp.web
import engineio
import engineio.async_socket
import structlog
from engineio import exceptions, packet

log = structlog.get_logger("pairwire.signaling")

# Sees a text message before engine.io does; True means it was handled.
Intercept = Callable[[engineio.async_socket.AsyncSocket, str], Awaitable[bool]]

# The only engine.io packets the websocket upgrade exchanges (engine.io protocol v4).
_PROBE, _PROBE_REPLY, _UPGRADE = "2probe", "3probe", "5"


class _WebSocketQueue:
    """Stands in for a socket's outgoing queue once it talks websocket: putting a packet writes it.

    Frames without compression are written synchronously by aiohttp, so packets leave in the
    order they were sent; a writer only waits when the client is slow to read.
    """

    def __init__(self, ws: aiohttp.web.WebSocketResponse, close: Callable[[], None]) -> None:
        self._ws = ws
        self._close = close
        self._failed = False

    async def put(self, pkt: packet.Packet | None) -> None:
        if pkt is None or self._failed:
            return
        data = pkt.encode()
        try:
            if isinstance(data, str):
                await self._ws.send_str(data)
            else:
                await self._ws.send_bytes(data)
        except Exception:
            # The connection is gone: the read loop sees it and closes the socket.
            self._failed = True
            return
        if pkt.packet_type == packet.CLOSE:
            self._close()  # engine.io closed the socket: end the connection now

    async def join(self) -> None:
        """Nothing is ever pending: packets are written when put (engine.io awaits this on close)."""


class WebSocketDriver:
    """The websocket class python-engineio instantiates per connection: `(handler, server)`."""

    def __init__(self, handler: Callable[..., Awaitable[Any]], server: engineio.AsyncServer,
                 intercept: Intercept | None = None) -> None:
        # The handler is the socket's bound `_websocket_handler`; the socket is what we drive.
        self._socket: engineio.async_socket.AsyncSocket = handler.__self__  # type: ignore[attr-defined]
        self._server = server
        self._intercept = intercept
        self._received = 0  # messages read so far, for the watchdog
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[Any] | None = None

    async def __call__(self, environ: dict[str, Any]) -> aiohttp.web.WebSocketResponse:
        request: aiohttp.web.Request = environ["aiohttp.request"]
        # No permessage-deflate, as Node's socket.io: browsers always offer it, and accepted it
        # keeps ~94 KB of zlib state per client and dominates the relay (docs/performance.md).
        ws = aiohttp.web.WebSocketResponse(compress=False, max_msg_size=self._server.max_http_buffer_size)
        await ws.prepare(request)
        socket = self._socket
        if socket.connected:
            if not await self._upgrade(ws):
                return ws
        socket.connected = True
        socket.upgraded = True
        await self._switch_to_direct_writes(ws)
        self._arm_watchdog(ws, seen=0)
        try:
            await self._read(ws)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            await socket.close(wait=False, abort=True, reason=self._server.reason.TRANSPORT_CLOSE)
            await ws.close()
        return ws

    def _arm_watchdog(self, ws: aiohttp.web.WebSocketResponse, seen: int) -> None:
        # python-engineio reads each message under a timeout of ping interval + ping timeout:
        # a healthy client answers every ping, so a silent window that long means it is gone.
        # One timer per window does the same job as a timer per message. It also ends the
        # connection once engine.io has closed the socket without writing a CLOSE packet
        # (its ping timeout does that), which the stock driver's read timeout also covered.
        period = self._server.ping_interval + self._server.ping_timeout
        self._watchdog = asyncio.get_running_loop().call_later(period, self._watch, ws, seen)

    def _watch(self, ws: aiohttp.web.WebSocketResponse, seen: int) -> None:
        if self._socket.closed or self._received == seen:
            self._watchdog = None
            self._close_soon(ws)
        else:
            self._arm_watchdog(ws, self._received)

    def _close_soon(self, ws: aiohttp.web.WebSocketResponse) -> None:
        """Close the websocket from outside the read loop, which then ends."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(ws.close())

    async def _upgrade(self, ws: aiohttp.web.WebSocketResponse) -> bool:
        """A long-polling client moving to websocket: probe, end the pending poll, confirm."""
        socket = self._socket
        socket.upgrading = True  # engine.io holds sends in the queue meanwhile
        try:
            if await _receive_text(ws) != _PROBE:
                return False
            await ws.send_str(_PROBE_REPLY)
            await socket.queue.put(packet.Packet(packet.NOOP))
            return await _receive_text(ws) == _UPGRADE
        finally:
            socket.upgrading = False

    async def _switch_to_direct_writes(self, ws: aiohttp.web.WebSocketResponse) -> None:
        """Write what was queued before (the open packet, held sends), then write packets as sent."""
        socket = self._socket
        direct = _WebSocketQueue(ws, lambda: self._close_soon(ws))
        queued: asyncio.Queue[packet.Packet | None] = socket.queue
        # Sends that arrive while the backlog is written go to the old queue too; the switch
        # happens once it is empty, with no await in between, so order holds and nothing is lost.
        while not queued.empty():
            pkt = queued.get_nowait()
            queued.task_done()
            await direct.put(pkt)
        socket.queue = direct

    async def _read(self, ws: aiohttp.web.WebSocketResponse) -> None:
        socket = self._socket
        intercept = self._intercept
        while True:
            msg = await ws.receive()
            self._received += 1
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = msg.data
                if intercept is not None and data.startswith("42"):
                    try:
                        if await intercept(socket, data):
                            continue
                    except exceptions.SocketIsClosedError:
                        return
                    except Exception:
                        log.exception("inline event failed")
                        continue
            elif msg.type is aiohttp.WSMsgType.BINARY:
                data = msg.data
            else:
                return  # closed, closing or a protocol error
            try:
                await socket.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                return
            except Exception:
                log.exception("engine.io packet failed")


async def _receive_text(ws: aiohttp.web.WebSocketResponse) -> str | None:
    msg = await ws.receive()
    return msg.data if msg.type is aiohttp.WSMsgType.TEXT else None


def install(server: engineio.AsyncServer, intercept: Intercept | None = None) -> None:
    """Make this engine.io server (and no other) use `WebSocketDriver` for its websockets."""

    def driver(handler: Callable[..., Awaitable[Any]], eio: engineio.AsyncServer) -> WebSocketDriver:
        return WebSocketDriver(handler, eio, intercept)

    # python-engineio keeps the driver table of the module; a copy keeps the change to this server.
    server._async = {**server._async, "websocket": driver}
