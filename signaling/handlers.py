"""Socket.IO event handlers: validate, call the service, answer the acknowledgement.

Every client event is acknowledged `{ok: true, ...}` or `{ok: false, error: {code, message}}`;
an unknown event or a payload that is not what the contract says gets `invalid`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import socketio
import structlog
from pydantic import BaseModel, ValidationError

from matching.calls import CallService
from matching.errors import Invalid, PairwireError, TooLarge
from matching.identity import Identity

from .events import MAX_SIGNAL_BYTES, ChatSend, ChatTyping, MatchRef, QueueJoin, QueueLeave, Signal
from .inline import plain_message
from .server import SignalingServer, user_room

log = structlog.get_logger("pairwire.signaling")

Action = Callable[[Identity, Any], Awaitable[dict[str, Any]]]


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors())


def _refusal(exc: PairwireError) -> dict[str, Any]:
    return {"ok": False, "error": exc.to_error(), **exc.extra}


def _size(data: Any) -> int:
    """Bytes `data` takes on the wire, near enough; binary attachments count their length."""
    try:
        return len(orjson.dumps(data))
    except TypeError:
        if isinstance(data, (bytes, bytearray)):
            return len(data)
        if isinstance(data, dict):
            return sum(_size(k) + _size(v) for k, v in data.items())
        if isinstance(data, (list, tuple)):
            return sum(_size(v) for v in data)
        return len(repr(data))


class SocketNotifier:
    """Delivers events to a user's room, so every tab (and, later, every process) receives them.

    With the in-process manager, the event is encoded once as a Socket.IO EVENT packet for the
    default namespace and handed to each of the user's engine.io sockets in turn: the generic
    emit walks the payload for binary data and starts a task per recipient, which was most of
    the relay's cost (docs/performance.md). Order is kept: each send is awaited in turn. A
    manager that fans out to other processes (Redis) gets the generic emit.
    """

    def __init__(self, server: SignalingServer) -> None:
        self._sio = server.sio
        self._local = type(server.sio.manager) is socketio.AsyncManager

    async def send(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        room = user_room(user_id)
        # Not plain JSON (binary data): the generic path handles attachments.
        message = plain_message("2", [event, payload]) if self._local else None
        if message is None:
            await self._sio.emit(event, payload, room=room)
            return
        for _sid, eio_sid in list(self._sio.manager.get_participants("/", room)):
            await self._sio.eio.send_packet(eio_sid, message)


class CallHandlers:
    """Binds the contract's events to the call service."""

    def __init__(self, server: SignalingServer, service: CallService) -> None:
        self._server = server
        self._service = service
        # This process's sockets per user: the last one to go starts the grace period.
        self._sockets: dict[str, set[str]] = {}
        sio = server.sio
        self._bind("queue:join", QueueJoin, lambda who, p: service.join_queue(who, p.mode, p.topics, p.sessionId))
        self._bind("queue:leave", QueueLeave, lambda who, p: service.leave_queue(who))
        self._bind("match:join", MatchRef, lambda who, p: service.join_match(who, p.matchId))
        self._bind("match:skip", MatchRef, lambda who, p: service.end_match(who, p.matchId, skip=True))
        self._bind("match:end", MatchRef, lambda who, p: service.end_match(who, p.matchId))
        self._bind("signal", Signal, self._signal, inline=True)
        self._bind("chat:send", ChatSend, lambda who, p: service.send_chat(who, p.matchId, p.text))
        self._bind("chat:typing", ChatTyping, lambda who, p: service.typing(who, p.matchId, p.typing), inline=True)
        sio.on("*", self._unknown)
        server.on_connect = self._connected
        server.on_ready = lambda sid, who: service.resume(who)
        server.on_disconnected = self._disconnected

    def _bind(self, event: str, model: type[BaseModel], action: Action, *, inline: bool = False) -> None:
        """Answer `event` with `action`; `inline` for hot events that write nothing to the database."""
        async def handler(sid: str, data: Any = None) -> dict[str, Any]:
            try:
                who = await self._server.identity(sid)
                if data is None:
                    data = {}
                if not isinstance(data, dict):
                    raise Invalid(f"the payload of {event} must be an object")
                try:
                    payload = model.model_validate(data)
                except ValidationError as exc:
                    raise Invalid(_describe(exc)) from None
                return {"ok": True, **await action(who, payload)}
            except PairwireError as exc:
                return _refusal(exc)
            except Exception:
                log.exception("event failed", event_name=event)
                return {"ok": False, "error": {"code": "unavailable", "message": "the server could not do that now"}}

        self._server.sio.on(event, handler)
        if inline:
            self._server.inline.add(event, handler)

    async def _signal(self, who: Identity, payload: Signal) -> dict[str, Any]:
        if _size(payload.data) > MAX_SIGNAL_BYTES:
            raise TooLarge(f"signal data is at most {MAX_SIGNAL_BYTES} bytes")
        return await self._service.relay_signal(who, payload.matchId, payload.kind, payload.data)

    async def _unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        return _refusal(Invalid(f"unknown event {event!r}"))

    async def _connected(self, sid: str, who: Identity) -> None:
        self._sockets.setdefault(who.user_id, set()).add(sid)
        await self._service.connected(who)

    async def _disconnected(self, sid: str, who: Identity) -> None:
        sockets = self._sockets.get(who.user_id, set())
        sockets.discard(sid)
        if not sockets:
            self._sockets.pop(who.user_id, None)
            await self._service.disconnected(who)

    def connected_users(self) -> list[str]:
        """Users with at least one socket on this process."""
        return list(self._sockets)

    async def heartbeat_forever(self, interval: float) -> None:
        """Keep `lastSeen` of connected users fresh until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self._service.heartbeat(self.connected_users())
            except Exception:
                log.exception("heartbeat failed")
