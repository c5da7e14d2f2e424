"""Socket.IO events answered inline, on the connection that reads them.

For each event python-socketio decodes the packet with the stdlib json (a new decoder per call),
starts a task, and builds, walks for binary data and encodes a `Packet` for the acknowledgement.
The few events that are the hot path and wait on nothing slow (`signal`, `chat:typing`) are
decoded here with orjson, given to the same handler the generic path would call, and answered
on the spot. Anything not recognised exactly (another namespace, another event, binary data,
another number of arguments, a socket not yet connected to the namespace) is left to
python-socketio, which treats it as before. An inline handler holds up the reading of its own
connection while it runs, so events from one client are handled in order.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.async_socket
import orjson
import socketio
from engineio import packet

# A Socket.IO EVENT for the default namespace ("4" engine.io MESSAGE, "2" EVENT), then an
# optional acknowledgement id and the JSON array of the event name and its arguments.
_EVENT = re.compile(r"42(\d*)(?=\[)")

Handler = Callable[[str, Any], Awaitable[Any]]


class InlineEvents:
    """The events a `transport.WebSocketDriver` hands over before engine.io sees them."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._handlers: dict[str, Handler] = {}

    def add(self, event: str, handler: Handler) -> None:
        """Handle `event` inline with `handler(sid, payload)`, also registered with python-socketio."""
        self._handlers[event] = handler

    async def __call__(self, socket: engineio.async_socket.AsyncSocket, text: str) -> bool:
        """Handle one text message if it is an inline event; False leaves it to python-socketio."""
        head = _EVENT.match(text)
        if head is None:
            return False
        try:
            data = orjson.loads(text[head.end():])
        except orjson.JSONDecodeError:
            return False
        if type(data) is not list or len(data) != 2:
            return False
        handler = self._handlers.get(data[0]) if type(data[0]) is str else None
        if handler is None:
            return False
        manager = self._sio.manager
        sid = manager.sid_from_eio_sid(socket.sid, "/")
        if sid is None or not manager.is_connected(sid, "/"):
            return False
        result = await handler(sid, data[1])
        ack = head.group(1)
        if ack:
            await self._acknowledge(socket, int(ack), result)
        return True

    async def _acknowledge(self, socket: engineio.async_socket.AsyncSocket, ack: int, result: Any) -> None:
        # As python-socketio does: None acknowledges with no arguments, a tuple with several.
        args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
        message = plain_message(f"3{ack}", args)
        if message is None:  # binary data: python-socketio encodes attachments
            await self._sio._send_packet(
                socket.sid, self._sio.packet_class(socketio.packet.ACK, namespace="/", id=ack, data=args))
            return
        await socket.send(message)


def plain_message(head: str, args: list[Any]) -> packet.Packet | None:
    """The engine.io MESSAGE for a Socket.IO packet of the default namespace, or None if `args` is not plain JSON.

    `head` is the Socket.IO packet type with its acknowledgement id, if any ("2" an event,
    "3<id>" an ack); engine.io adds its own "4" when it writes the packet.
    """
    try:
        return packet.Packet(packet.MESSAGE, head + orjson.dumps(args).decode())
    except TypeError:
        return None
