"""`pairwire bot`: a real Pairwire client with aiortc media, for end-to-end tests and load.

A :class:`Bot` speaks only the wire contract (docs/protocol.md), exactly as a browser would:

1. ``POST /api/auth/guest`` (aiohttp client) for a token and a user id;
2. a python-socketio ``AsyncClient`` over the websocket transport, ``auth={"token": ...}``;
3. ``queue:join``; on each ``match:found``: ``match:join``, then a :class:`~media.peer.CallPeer`
   (initiator as the event says, ``iceServers`` from the event, never a default) whose
   signalling goes out as ``signal`` events and whose incoming ``signal`` events are fed back;
4. on ``match:ended``: close the peer, then queue again or stop, as the options say.

Server events are handled strictly in arrival order by one dispatcher task (python-socketio
runs every handler in its own task, which could otherwise reorder an offer and its
candidates). A repeated ``match:found`` for an open match (a resume after a reconnect, by
either side) tears the peer connection down and builds a new one.

Tests drive and observe a bot through :meth:`Bot.wait_for` (wake-ups on every state
change, never blind sleeps), the ``matched`` / ``frames_flowing`` / ``ended`` / ``stopped``
events, the :attr:`Bot.calls` records, and the actions :meth:`Bot.end_call`,
:meth:`Bot.skip_call`, :meth:`Bot.send_chat` and :meth:`Bot.reconnect`.

Everything is bounded: each acknowledgement by ``ack_timeout``, the whole run by ``timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from .peer import CallPeer

__all__ = [
    "DEFAULT_URL",
    "Bot",
    "BotError",
    "BotOptions",
    "BotReport",
    "BotStopped",
    "CallRecord",
    "add_arguments",
    "options_from_args",
    "run_bots",
    "run_from_args",
]

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
MODES = ("video", "text")
Progress = Callable[[str], None]


class BotError(Exception):
    """Sign-in, connect or queueing failed; ``code`` is the contract's error code when known."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BotStopped(RuntimeError):
    """:meth:`Bot.wait_for` was waiting for something that can no longer happen: the bot stopped."""


# -- options and records -------------------------------------------------------------------


@dataclass
class BotOptions:
    """What one bot does; every field has a default so tests name only what matters."""

    url: str = DEFAULT_URL
    display_name: str = "bot"
    mode: str = "video"
    topics: list[str] = field(default_factory=list)
    seniority: str | None = None
    calls: int = 1
    """Calls (ended matches, whatever their status) to take part in before stopping."""
    call_seconds: float = 5.0
    """Stay this long in a call after the first remote frame (text: after ``match:started``),
    then send ``match:end``; 0 = stay until the partner ends it."""
    skip_after: float | None = None
    """Send ``match:skip`` this many seconds after ``match:found`` (instead of ``call_seconds``)."""
    ice_hosts: list[str] | None = None
    """Restrict ICE host candidates to these local IPs (e.g. ``["127.0.0.1"]``); None = all."""
    timeout: float = 60.0
    """Bound on the whole run, in seconds."""
    chat: str | None = None
    """Text sent once (``chat:send``) in each call, right after ``match:started``."""
    resume_after: float | None = None
    """Drop the socket this many seconds after ``match:started`` and reconnect with the same token."""
    ack_timeout: float = 10.0
    """Bound on each acknowledgement, HTTP request and socket connect."""
    width: int = 320
    height: int = 240
    fps: int = 15

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.topics = list(self.topics)
        if self.ice_hosts is not None:
            self.ice_hosts = [str(ipaddress.ip_address(host)) for host in self.ice_hosts]
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.calls < 1:
            raise ValueError(f"calls must be at least 1, got {self.calls}")
        if self.timeout <= 0 or self.ack_timeout <= 0:
            raise ValueError("timeout and ack_timeout must be positive")
        for name in ("call_seconds", "skip_after", "resume_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")


@dataclass
class CallRecord:
    """One match as this bot lived it (times are this process's ``time.monotonic()``)."""

    match_id: str
    initiator: bool
    partner_id: str | None
    partner_name: str | None
    mode: str
    room_id: str | None
    matched_topics: list[str]
    matched_at: float
    """Local clock when the first ``match:found`` for this match arrived."""
    found_count: int = 1
    """``match:found`` events received for this match; more than 1 after a resume."""
    connections: int = 0
    """Peer connections built for this match (one per ``match:found``)."""
    joined: bool = False
    """The last ``match:join`` was acknowledged ``ok``."""
    started: bool = False
    """``match:started`` was received."""
    started_at: str | None = None
    """The server's ``startedAt``."""
    ended: dict[str, Any] | None = None
    """The ``match:ended`` payload, once received."""
    frames_received: int = 0
    """Decoded remote frames over every peer connection of this match."""
    frames_sent: int = 0
    frames_received_current: int = 0
    """Decoded remote frames on the current (latest) peer connection only."""
    setup_ms: float | None = None
    """First ``match:found`` to the first decoded remote frame, in milliseconds."""
    resume_setup_ms: list[float] = field(default_factory=list)
    """Each later ``match:found`` to the first frame of the rebuilt connection."""
    connection_state: str = "new"
    chat_sent: list[dict[str, Any]] = field(default_factory=list)
    """``{text, id, sentAt}`` for each acknowledged ``chat:send``."""
    chat_received: list[dict[str, Any]] = field(default_factory=list)
    """``chat:message`` payloads received for this match (from anyone)."""
    typing_received: list[dict[str, Any]] = field(default_factory=list)
    action: str | None = None
    """``"end"`` or ``"skip"`` when this bot asked to finish the match."""

    @property
    def is_open(self) -> bool:
        return self.ended is None

    @property
    def status(self) -> str | None:
        """The ended status (``ENDED``, ``SKIPPED``, ...) or None while open."""
        return None if self.ended is None else self.ended.get("status")

    @property
    def time_to_first_frame(self) -> float | None:
        """Seconds from ``match:found`` to the first decoded frame (``setup_ms`` / 1000)."""
        return None if self.setup_ms is None else self.setup_ms / 1000

    def partner_messages(self) -> list[dict[str, Any]]:
        """``chat:message`` payloads sent by the partner."""
        return [m for m in self.chat_received if m.get("from") == self.partner_id]

    def succeeded(self) -> bool:
        """Ended, and in video mode at least one remote frame decoded (text: the call started)."""
        if self.ended is None:
            return False
        return self.frames_received >= 1 if self.mode == "video" else self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "matchId": self.match_id,
            "initiator": self.initiator,
            "partnerId": self.partner_id,
            "partnerName": self.partner_name,
            "mode": self.mode,
            "matchedTopics": list(self.matched_topics),
            "foundCount": self.found_count,
            "connections": self.connections,
            "joined": self.joined,
            "started": self.started,
            "startedAt": self.started_at,
            "ended": self.ended,
            "status": self.status,
            "action": self.action,
            "framesReceived": self.frames_received,
            "framesSent": self.frames_sent,
            "setupMs": _round(self.setup_ms),
            "resumeSetupMs": [_round(ms) for ms in self.resume_setup_ms],
            "chatSent": len(self.chat_sent),
            "chatReceived": len(self.partner_messages()),
            "succeeded": self.succeeded(),
        }


@dataclass
class BotReport:
    """JSON-serialisable summary of one bot's run."""

    label: str
    user_id: str | None
    display_name: str
    mode: str
    requested_calls: int
    ok: bool
    failure: str | None
    elapsed_s: float
    calls: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    exhausted: list[dict[str, Any]]
    connects: int

    @property
    def frames_received(self) -> int:
        return sum(c["framesReceived"] for c in self.calls)

    @property
    def frames_sent(self) -> int:
        return sum(c["framesSent"] for c in self.calls)

    @property
    def setup_ms(self) -> list[float]:
        return [c["setupMs"] for c in self.calls if c["setupMs"] is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "userId": self.user_id,
            "displayName": self.display_name,
            "mode": self.mode,
            "ok": self.ok,
            "failure": self.failure,
            "elapsedSeconds": round(self.elapsed_s, 3),
            "requestedCalls": self.requested_calls,
            "completedCalls": sum(1 for c in self.calls if c["ended"] is not None),
            "framesReceived": self.frames_received,
            "framesSent": self.frames_sent,
            "setupMs": self.setup_ms,
            "connects": self.connects,
            "calls": self.calls,
            "errors": self.errors,
            "exhausted": self.exhausted,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class _Connection:
    """One peer connection of a call (a call has several after resumes)."""

    peer: CallPeer
    record: CallRecord
    found_at: float
    first: bool
    ice_servers: list[dict[str, Any]]
    base_received: int
    base_sent: int
    saw_frame: bool = False
    watcher: asyncio.Task[None] | None = None


# -- the bot -------------------------------------------------------------------------------


class Bot:
    """One guest user taking calls through a Pairwire server."""

    def __init__(
        self,
        options: BotOptions,
        *,
        label: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.options = options
        self.label = label or options.display_name
        self._progress_cb = progress

        self.token: str | None = None
        self.user: dict[str, Any] | None = None
        self.session_id: str | None = None
        self.queue_positions: list[Any] = []
        self.calls: list[CallRecord] = []
        self.exhausted: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        """Failed acknowledgements (``ok: false``, timeouts) and local problems, in order."""
        self.events: list[tuple[float, str, Any]] = []
        """Every server event received: ``(local clock, name, payload)``."""
        self.connects = 0
        self.failure: str | None = None
        """Why the run failed (timeout, sign-in, unexpected disconnect...), None if it did not."""

        # Set once, never cleared: awaitable milestones.
        self.matched = asyncio.Event()
        self.frames_flowing = asyncio.Event()
        self.ended = asyncio.Event()
        self.stopped = asyncio.Event()

        self._changed = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[float, str, Any]] = asyncio.Queue()
        self._sio: socketio.AsyncClient | None = None
        self._expected_disconnects: set[int] = set()
        self._http: aiohttp.ClientSession | None = None
        self._conn: _Connection | None = None
        self._controllers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Tasks awaiting an acknowledgement: the server sends the events it decided (e.g.
        # match:ended) before the ack, so the bot must not hang up while one is in flight.
        self._awaiting_ack: set[asyncio.Task[Any]] = set()
        self._done = False
        self._stop_requested = False
        self._ran = False
        self._t0 = time.monotonic()

    # -- observation ---------------------------------------------------------------------

    @property
    def user_id(self) -> str | None:
        return self.user["id"] if self.user else None

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected

    @property
    def current_call(self) -> CallRecord | None:
        """The open call, if any."""
        return self.calls[-1] if self.calls and self.calls[-1].is_open else None

    @property
    def completed_calls(self) -> list[CallRecord]:
        return [c for c in self.calls if not c.is_open]

    @property
    def peer(self) -> CallPeer | None:
        """The current peer connection (diagnostics)."""
        return self._conn.peer if self._conn else None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        """Return once ``predicate()`` holds, re-checking on every state change.

        Raises ``TimeoutError`` after ``timeout`` seconds, :class:`BotStopped` if the bot's
        run ended while the predicate was still false.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.stopped.is_set():
                    raise BotStopped(
                        f"{self.label} stopped ({self.failure or 'finished'}) before the condition held"
                    )
                await self._changed.wait()

    async def wait_matched(self, count: int = 1, timeout: float = 30.0) -> CallRecord:
        """Wait for the ``count``-th match and return its record."""
        await self.wait_for(lambda: len(self.calls) >= count, timeout)
        return self.calls[count - 1]

    async def wait_frames(self, frames: int = 10, timeout: float = 30.0) -> CallRecord:
        """Wait until the latest call's *current* peer connection decoded ``frames`` frames."""
        await self.wait_for(
            lambda: bool(self.calls) and self.calls[-1].frames_received_current >= frames, timeout
        )
        return self.calls[-1]

    async def wait_ended(self, count: int = 1, timeout: float = 30.0) -> CallRecord:
        """Wait until ``count`` calls have ended and return the ``count``-th."""
        await self.wait_for(lambda: len(self.completed_calls) >= count, timeout)
        return self.completed_calls[count - 1]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _progress(self, message: str) -> None:
        logger.info("[%s] %s", self.label, message)
        if self._progress_cb is not None:
            self._progress_cb(f"[{time.monotonic() - self._t0:7.2f}s {self.label}] {message}")

    def _error(self, event: str, code: str, message: str, **extra: Any) -> None:
        entry = {"event": event, "code": code, "message": message, **extra}
        self.errors.append(entry)
        # With a progress callback the line below already says it; do not print it twice.
        level = logging.INFO if self._progress_cb is not None else logging.WARNING
        logger.log(level, "[%s] %s failed: %s %s", self.label, event, code, message)
        self._progress(f"error: {event}: {code}: {message}")
        self._notify()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> BotReport:
        """Sign in, connect, take ``options.calls`` calls, disconnect; never raises (see ``failure``)."""
        if self._ran:
            raise RuntimeError("Bot.run() may only be called once")
        self._ran = True
        self._t0 = time.monotonic()
        try:
            async with asyncio.timeout(self.options.timeout):
                self._http = aiohttp.ClientSession()
                await self._sign_in()
                await self._connect()
                self._spawn(self._dispatch())
                await self._join_queue()
                await self.wait_for(lambda: self._done or self._stop_requested, None)
        except TimeoutError:
            self._fail("timeout", f"gave up after {self.options.timeout:g} s")
        except BotError as exc:
            self._fail(exc.code, exc.message)
        except BotStopped:
            pass  # failure already recorded
        except Exception as exc:  # a bug or an unexpected library error: report, do not hang
            logger.exception("[%s] bot crashed", self.label)
            self._fail("bot_error", repr(exc))
        finally:
            await self._shutdown()
        report = self.report()
        self._progress(
            f"done: {'ok' if report.ok else 'FAILED'}"
            + (f" ({report.failure})" if report.failure else "")
            + f", {len(self.completed_calls)}/{self.options.calls} calls"
        )
        return report

    def stop(self) -> None:
        """Ask a running bot to wind down now (the run returns its report)."""
        self._stop_requested = True
        self._notify()

    def report(self) -> BotReport:
        succeeded = [c for c in self.calls if c.succeeded()]
        return BotReport(
            label=self.label,
            user_id=self.user_id,
            display_name=self.options.display_name,
            mode=self.options.mode,
            requested_calls=self.options.calls,
            ok=self.failure is None and len(succeeded) >= self.options.calls,
            failure=self.failure,
            elapsed_s=time.monotonic() - self._t0,
            calls=[c.to_dict() for c in self.calls],
            errors=list(self.errors),
            exhausted=list(self.exhausted),
            connects=self.connects,
        )

    def _fail(self, code: str, message: str) -> None:
        if self.failure is None:
            self.failure = f"{code}: {message}"
            self._progress(f"failed: {self.failure}")
        self._done = True
        self._notify()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        # A controller of an ended call may still await the ack of its match:end/skip (the
        # server sends match:ended before that ack): let it collect the answer, briefly.
        finishing = [
            task
            for match_id, task in self._controllers.items()
            if not task.done() and (record := self._record(match_id, "shutdown")) is not None and not record.is_open
        ]
        finishing += [t for t in self._awaiting_ack if t is not asyncio.current_task() and not t.done()]
        if finishing and self.failure is None and not self._stop_requested:
            await asyncio.wait(finishing, timeout=self.options.ack_timeout)
        pending = [t for t in [*self._controllers.values(), *self._tasks] if not t.done()]
        for task in pending:
            task.cancel()
        for task in [*self._controllers.values(), *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._close_peer(), 10)
        if self._sio is not None:
            client = self._sio
            self._expected_disconnects.add(id(client))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()
        self.stopped.set()
        self._notify()

    # -- HTTP and socket -------------------------------------------------------------------

    async def _sign_in(self) -> None:
        body: dict[str, Any] = {"displayName": self.options.display_name}
        if self.options.topics:
            body["topics"] = list(self.options.topics)
        if self.options.seniority:
            body["seniority"] = self.options.seniority
        assert self._http is not None
        url = f"{self.options.url}/api/auth/guest"
        try:
            async with self._http.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=self.options.ack_timeout)
            ) as response:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = None
                if response.status != 201 or not isinstance(payload, dict):
                    error = payload.get("error", {}) if isinstance(payload, dict) else {}
                    raise BotError(
                        error.get("code", f"http_{response.status}"),
                        f"guest sign-in answered {response.status}: {error.get('message', payload)}",
                    )
        except aiohttp.ClientError as exc:
            raise BotError("unavailable", f"guest sign-in at {url} failed: {exc!r}") from exc
        except TimeoutError as exc:  # aiohttp's own timeout (the run's bound arrives as a cancel)
            raise BotError("timeout", f"guest sign-in at {url} took over {self.options.ack_timeout:g} s") from exc
        token, user = payload.get("token"), payload.get("user")
        if not isinstance(token, str) or not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise BotError("invalid", f"guest sign-in answered without token/user.id: {payload!r}")
        self.token, self.user = token, user
        self._progress(f"signed in as {user.get('displayName')!r} (user {user['id']})")

    async def _connect(self) -> None:
        """Open a new Socket.IO connection with the bot's token (also used to resume)."""
        client = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        refusals: list[Any] = []

        def on_connect_error(data: Any = None) -> None:
            refusals.append(data)

        def on_disconnect(reason: Any = None) -> None:
            self._on_disconnect(client, reason)

        def on_any(event: str, *args: Any) -> None:
            # Synchronous on purpose: enqueue before anything can interleave, keeping order.
            payload = args[0] if args else None
            now = time.monotonic()
            self.events.append((now, event, payload))
            self._inbox.put_nowait((now, event, payload))

        client.on("connect_error", on_connect_error)
        client.on("disconnect", on_disconnect)
        client.on("*", on_any)
        # Current before connecting: events can arrive right after the handshake.
        self._sio = client
        try:
            await client.connect(
                self.options.url,
                auth={"token": self.token},
                transports=["websocket"],
                socketio_path="socket.io",
                wait_timeout=self.options.ack_timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            refusal = refusals[-1] if refusals else None
            data = refusal.get("data") if isinstance(refusal, dict) else None
            code = data.get("code") if isinstance(data, dict) else "unavailable"
            raise BotError(code or "unavailable", f"Socket.IO connect refused: {refusal or exc}") from exc
        self.connects += 1
        self._progress("connected" if self.connects == 1 else f"reconnected (connection {self.connects})")
        self._notify()

    def _on_disconnect(self, client: socketio.AsyncClient, reason: Any) -> None:
        if id(client) in self._expected_disconnects or client is not self._sio:
            return
        self._progress(f"socket disconnected by the server or network ({reason})")
        if not self._done:
            self._fail("disconnected", f"socket dropped unexpectedly ({reason})")

    async def _call(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        benign: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Emit with acknowledgement; returns the ack dict, or None after recording an error.

        ``benign(ack)`` may excuse an ``ok: false`` answer (logged, not counted as an error).
        """
        client = self._sio
        if client is None:
            self._error(event, "disconnected", "no socket", payload=_brief(payload))
            return None
        # No `client.connected` check: events arrive (and are answered) between the server's
        # CONNECT packet and the end of connect(), while `connected` is still False.
        current = asyncio.current_task()
        if current is not None:
            self._awaiting_ack.add(current)
        try:
            ack = await client.call(event, payload, timeout=self.options.ack_timeout)
        except socketio.exceptions.TimeoutError:
            self._error(event, "timeout", f"no acknowledgement within {self.options.ack_timeout:g} s",
                        payload=_brief(payload))
            return None
        except socketio.exceptions.SocketIOError as exc:
            self._error(event, "disconnected", repr(exc), payload=_brief(payload))
            return None
        finally:
            self._awaiting_ack.discard(current)  # type: ignore[arg-type]
        if not isinstance(ack, dict) or "ok" not in ack:
            self._error(event, "contract", f"acknowledgement is not {{ok, ...}}: {ack!r}", payload=_brief(payload))
            return None
        if ack["ok"] is not True:
            error = ack.get("error") if isinstance(ack.get("error"), dict) else {}
            if benign is not None and benign(ack):
                self._progress(f"{event}: {error.get('code')}: {error.get('message')} (expected, ignored)")
                return None
            self._error(event, str(error.get("code", "unknown")), str(error.get("message", ack)),
                        payload=_brief(payload), ack=ack)
            return None
        return ack

    async def _join_queue(self) -> None:
        payload: dict[str, Any] = {"mode": self.options.mode}
        if self.options.topics:
            payload["topics"] = list(self.options.topics)
        if self.session_id:
            payload["sessionId"] = self.session_id
        ack = await self._call("queue:join", payload)
        if ack is None:
            raise BotError("queue", "queue:join was not acknowledged ok")
        if isinstance(ack.get("sessionId"), str):
            self.session_id = ack["sessionId"]
        self.queue_positions.append(ack.get("queuePosition"))
        self._notify()  # wake wait_for() callers watching queue_positions
        self._progress(
            f"queued for {self.options.mode} (position {ack.get('queuePosition')}, "
            f"previously matched {ack.get('previouslyMatchedCount')})"
        )

    # -- public actions ----------------------------------------------------------------------

    async def end_call(self) -> dict[str, Any] | None:
        """Send ``match:end`` for the open call; returns the ack (None if refused or no call)."""
        return await self._finish_call("end")

    async def skip_call(self) -> dict[str, Any] | None:
        """Send ``match:skip`` for the open call; returns the ack (None if refused or no call)."""
        return await self._finish_call("skip")

    async def _finish_call(self, action: str) -> dict[str, Any] | None:
        record = self.current_call
        if record is None:
            return None
        record.action = action
        self._progress(f"{'ending' if action == 'end' else 'skipping'} the call {record.match_id}")
        match_id = record.match_id

        def ended_first(ack: dict[str, Any]) -> bool:
            # Both sides finished at once: the server ended the match before this request
            # (its match:ended reached us before this ack). A race, not a fault.
            error = ack.get("error") if isinstance(ack.get("error"), dict) else {}
            return error.get("code") in ("conflict", "not_found") and any(
                name == "match:ended" and isinstance(data, dict) and data.get("matchId") == match_id
                for _, name, data in self.events
            )

        return await self._call(f"match:{action}", {"matchId": match_id}, benign=ended_first)

    async def send_chat(self, text: str) -> dict[str, Any] | None:
        """``chat:send`` in the open call; the ack's message is kept in ``chat_sent``."""
        record = self.current_call
        if record is None:
            raise RuntimeError(f"{self.label} has no open call to chat in")
        ack = await self._call("chat:send", {"matchId": record.match_id, "text": text})
        if ack is not None:
            message = ack.get("message") if isinstance(ack.get("message"), dict) else {}
            record.chat_sent.append({"text": text, **message})
            self._progress(f"chat sent ({len(text)} characters)")
            self._notify()
        return ack

    async def send_typing(self, typing: bool) -> dict[str, Any] | None:
        record = self.current_call
        if record is None:
            raise RuntimeError(f"{self.label} has no open call")
        return await self._call("chat:typing", {"matchId": record.match_id, "typing": typing})

    async def reconnect(self, pause: float = 0.0) -> None:
        """Drop the socket abruptly (no Socket.IO goodbye, like a network loss) and reconnect.

        The peer connection is left alone: the server's repeated ``match:found`` tells both
        sides to rebuild it.
        """
        old = self._sio
        if old is not None:
            self._expected_disconnects.add(id(old))
            self._progress("dropping the socket")
            ws = getattr(old.eio, "ws", None)
            try:
                if ws is not None:
                    await asyncio.wait_for(ws.close(), self.options.ack_timeout)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.options.ack_timeout):
                            while old.connected:
                                await asyncio.sleep(0.01)
                if old.connected:
                    await asyncio.wait_for(old.disconnect(), self.options.ack_timeout)
            except Exception as exc:  # the old socket is gone either way
                logger.info("[%s] dropping the socket: %r", self.label, exc)
        if pause:
            await asyncio.sleep(pause)
        await self._connect()

    # -- server events ---------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            received_at, event, payload = await self._inbox.get()
            try:
                await self._handle(received_at, event, payload)
            except Exception as exc:
                logger.exception("[%s] handling %s failed", self.label, event)
                self._error(event, "bot_error", repr(exc))
            self._notify()

    async def _handle(self, received_at: float, event: str, payload: Any) -> None:
        if event in _PAYLOAD_EVENTS and not isinstance(payload, dict):
            self._error(event, "contract", f"payload is not an object: {payload!r}")
            return
        if event == "match:found":
            await self._on_match_found(received_at, payload)
        elif event == "match:started":
            record = self._record(payload.get("matchId"), event)
            if record is not None:
                record.started = True
                record.started_at = payload.get("startedAt")
                self._progress(f"call started ({record.started_at})")
        elif event == "match:ended":
            await self._on_match_ended(payload)
        elif event == "signal":
            await self._on_signal(payload)
        elif event == "chat:message":
            record = self._record(payload.get("matchId"), event)
            if record is not None:
                record.chat_received.append(payload)
                if payload.get("from") != self.user_id:
                    self._progress(f"chat received ({len(str(payload.get('text', '')))} characters)")
        elif event == "chat:typing":
            record = self._record(payload.get("matchId"), event)
            if record is not None:
                record.typing_received.append(payload)
        elif event == "queue:exhausted":
            self.exhausted.append(payload)
            self._progress(f"queue exhausted: {payload.get('message')} (excluded {payload.get('excludedCount')})")
        else:
            logger.debug("[%s] ignoring event %s", self.label, event)

    def _record(self, match_id: Any, event: str) -> CallRecord | None:
        for record in reversed(self.calls):
            if record.match_id == match_id:
                return record
        logger.info("[%s] %s for unknown match %r ignored", self.label, event, match_id)
        return None

    async def _on_match_found(self, received_at: float, data: dict[str, Any]) -> None:
        match_id = data.get("matchId")
        if not isinstance(match_id, str) or not match_id:
            self._error("match:found", "contract", f"no matchId: {data!r}")
            return
        initiator = data.get("initiator")
        if not isinstance(initiator, bool):
            self._error("match:found", "contract", f"initiator is not a boolean: {initiator!r}")
            initiator = bool(initiator)
        ice_servers = data.get("iceServers")
        if not isinstance(ice_servers, list):
            self._error("match:found", "contract", f"iceServers is not a list: {ice_servers!r}")
            ice_servers = []  # explicit: never let aiortc fall back to a public STUN server
        mode = str(data.get("mode") or self.options.mode).lower()
        partner = data.get("partner") if isinstance(data.get("partner"), dict) else {}

        record = next((c for c in self.calls if c.match_id == match_id), None)
        if record is not None and not record.is_open:
            self._error("match:found", "contract", f"match:found for ended match {match_id}")
            return
        # Whatever was running before (an earlier connection of this match) is torn down first.
        await self._close_peer()
        first = record is None
        if record is None:
            if self.current_call is not None:
                self._error("match:found", "contract",
                            f"new match {match_id} while {self.current_call.match_id} is still open")
            record = CallRecord(
                match_id=match_id,
                initiator=initiator,
                partner_id=partner.get("id"),
                partner_name=partner.get("displayName"),
                mode=mode,
                room_id=data.get("roomId"),
                matched_topics=list(data.get("matchedTopics") or []),
                matched_at=received_at,
            )
            self.calls.append(record)
            topics = ", ".join(record.matched_topics) or "none"
            self._progress(
                f"matched with {record.partner_name!r} ({record.partner_id}) in {match_id}; "
                f"{'initiator' if initiator else 'answerer'}; shared topics: {topics}"
            )
            self.matched.set()
        else:
            record.found_count += 1
            record.initiator = initiator
            record.frames_received_current = 0
            self._progress(f"match:found again for {match_id}: rebuilding the peer connection")
        self._notify()

        ack = await self._call("match:join", {"matchId": match_id})
        record.joined = ack is not None
        if not record.is_open:
            return  # ended while we were joining

        await self._open_peer(record, ice_servers, received_at, first)
        if first:
            self._controllers[match_id] = asyncio.ensure_future(self._control(record))

    async def _open_peer(
        self, record: CallRecord, ice_servers: list[dict[str, Any]], found_at: float, first: bool
    ) -> CallPeer:
        """Build and start this call's (new) peer connection."""
        peer = CallPeer(
            ice_servers=ice_servers,
            send_signal=self._signal_sender(record.match_id),
            initiator=record.initiator,
            video=record.mode == "video",
            width=self.options.width,
            height=self.options.height,
            fps=self.options.fps,
            host_addresses=self.options.ice_hosts,
        )
        conn = _Connection(
            peer=peer,
            record=record,
            found_at=found_at,
            first=first,
            ice_servers=ice_servers,
            base_received=record.frames_received,
            base_sent=record.frames_sent,
        )
        self._conn = conn
        record.connections += 1
        conn.watcher = self._spawn(self._watch(conn))
        await peer.start()
        return peer

    async def _on_match_ended(self, data: dict[str, Any]) -> None:
        record = self._record(data.get("matchId"), "match:ended")
        if record is None or not record.is_open:
            return
        record.ended = data
        if self._conn is not None and self._conn.record is record:
            await self._close_peer()
        # The call's controller is not cancelled: its jobs see the call closed and return,
        # after collecting the ack of a match:end/skip still in flight.
        duration = data.get("duration")
        self._progress(
            f"ended: {data.get('status')}, duration {duration if duration is not None else '-'} s, "
            f"by {'me' if data.get('endedBy') == self.user_id else data.get('endedBy')}; "
            f"frames received {record.frames_received}, sent {record.frames_sent}"
        )
        self.ended.set()
        self._notify()
        if len(self.completed_calls) >= self.options.calls:
            self._done = True
        elif not self._stop_requested:
            try:
                await self._join_queue()
            except BotError as exc:
                self._fail(exc.code, exc.message)

    async def _on_signal(self, data: dict[str, Any]) -> None:
        conn = self._conn
        match_id = data.get("matchId")
        if conn is None or conn.record.match_id != match_id:
            logger.info("[%s] signal for %r with no peer for it: ignored", self.label, match_id)
            return
        kind = data.get("kind")
        if kind == "offer" and not conn.peer.initiator and conn.peer.has_remote_description:
            # A second offer: the initiator rebuilt its peer (it got match:found again) after
            # we had answered its previous one. Answer on a fresh connection, as it did.
            record = conn.record
            self._progress("new offer from the initiator: rebuilding the peer connection")
            await self._close_peer()
            record.frames_received_current = 0
            await self._open_peer(record, conn.ice_servers, conn.found_at, conn.first and record.setup_ms is None)
            conn = self._conn
            assert conn is not None
        try:
            await conn.peer.handle_signal(kind, data.get("data"))  # type: ignore[arg-type]
        except ValueError as exc:
            self._error("signal", "invalid", f"bad {data.get('kind')!r} signal from {data.get('from')}: {exc}")

    def _signal_sender(self, match_id: str) -> Callable[[str, dict], Any]:
        async def send(kind: str, data: dict) -> None:
            await self._call("signal", {"matchId": match_id, "kind": kind, "data": data})

        return send

    # -- peer connections ------------------------------------------------------------------

    async def _close_peer(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.watcher is not None:
            conn.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.watcher
        await conn.peer.close()
        self._sync(conn)

    async def _watch(self, conn: _Connection) -> None:
        """Mirror the peer's counters into the call record as frames arrive."""
        peer = conn.peer
        while not peer.closed:
            target = peer.frames_received + 1
            try:
                gone = await peer.wait_for_frames(target, 0.5) < target
            except TimeoutError:
                gone = False
            self._sync(conn)
            if gone:
                break

    def _sync(self, conn: _Connection) -> None:
        peer, record = conn.peer, conn.record
        record.frames_received = conn.base_received + peer.frames_received
        record.frames_sent = conn.base_sent + peer.frames_sent
        record.frames_received_current = peer.frames_received
        record.connection_state = peer.connection_state
        if not conn.saw_frame and peer.first_frame_at is not None:
            conn.saw_frame = True
            elapsed_ms = (peer.first_frame_at - conn.found_at) * 1000
            if conn.first:
                record.setup_ms = elapsed_ms
                self._progress(f"first frame after {elapsed_ms:.0f} ms")
            else:
                record.resume_setup_ms.append(elapsed_ms)
                self._progress(f"first frame after the rebuild, {elapsed_ms:.0f} ms after match:found")
            self.frames_flowing.set()
        self._notify()

    # -- per-call behaviour from the options -------------------------------------------------

    async def _control(self, record: CallRecord) -> None:
        options = self.options
        jobs = []
        if options.chat:
            jobs.append(self._chat_job(record, options.chat))
        if options.resume_after is not None:
            jobs.append(self._resume_job(record, options.resume_after))
        if options.skip_after is not None:
            jobs.append(self._skip_job(record, options.skip_after))
        elif options.call_seconds > 0:
            jobs.append(self._end_job(record, options.call_seconds))
        await asyncio.gather(*jobs)

    async def _until_ended(self, record: CallRecord, seconds: float) -> bool:
        """Sleep ``seconds`` unless the call ends first; True if it is still open."""
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: not record.is_open, seconds)
        return record.is_open

    async def _chat_job(self, record: CallRecord, text: str) -> None:
        await self.wait_for(lambda: record.started or not record.is_open, self.options.timeout)
        if record.is_open:
            await self.send_chat(text)

    async def _resume_job(self, record: CallRecord, after: float) -> None:
        await self.wait_for(lambda: record.started or not record.is_open, self.options.timeout)
        if await self._until_ended(record, after):
            await self.reconnect()

    async def _skip_job(self, record: CallRecord, after: float) -> None:
        if await self._until_ended(record, after):
            await self.skip_call()

    async def _end_job(self, record: CallRecord, seconds: float) -> None:
        if record.mode == "video":
            ready: Callable[[], bool] = lambda: record.frames_received > 0  # noqa: E731
        else:
            ready = lambda: record.started  # noqa: E731
        await self.wait_for(lambda: ready() or not record.is_open, self.options.timeout)
        if await self._until_ended(record, seconds):
            await self.end_call()


_PAYLOAD_EVENTS = frozenset(
    {"match:found", "match:started", "match:ended", "signal", "chat:message", "chat:typing", "queue:exhausted"}
)


def _brief(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload for an error entry, without SDP blobs."""
    return {k: (v if k != "data" else f"<{type(v).__name__}>") for k, v in payload.items()}


# -- several bots ----------------------------------------------------------------------------


async def run_bots(
    options: BotOptions, count: int = 1, *, progress: Progress | None = None
) -> list[BotReport]:
    """Run ``count`` bots (each its own guest) concurrently; names get ``-1``, ``-2``... when count > 1."""
    bots = []
    for index in range(1, count + 1):
        name = options.display_name if count == 1 else f"{options.display_name}-{index}"
        bot_options = dataclasses.replace(options, display_name=name)
        bots.append(Bot(bot_options, label=name, progress=progress))
    return list(await asyncio.gather(*(bot.run() for bot in bots)))


def summarize(reports: Sequence[BotReport]) -> dict[str, Any]:
    """The CLI's JSON output: every bot's report plus totals."""
    setups = sorted(ms for r in reports for ms in r.setup_ms)
    return {
        "ok": all(r.ok for r in reports),
        "bots": [r.to_dict() for r in reports],
        "totals": {
            "bots": len(reports),
            "ok": sum(1 for r in reports if r.ok),
            "calls": sum(len(r.calls) for r in reports),
            "framesReceived": sum(r.frames_received for r in reports),
            "framesSent": sum(r.frames_sent for r in reports),
            "errors": sum(len(r.errors) for r in reports),
            "setupMs": {
                "min": setups[0] if setups else None,
                "median": setups[len(setups) // 2] if setups else None,
                "max": setups[-1] if setups else None,
            },
        },
    }


# -- CLI glue ---------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value:g}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pairwire bot`."""
    parser.description = parser.description or (
        "Run guest bots that sign in, queue, and take real WebRTC calls (aiortc, synthetic "
        "video) through a Pairwire server. Progress goes to stderr, the JSON report to stdout; "
        "the exit status is 0 when every bot completed its calls (video: with frames received)."
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"server base URL (default {DEFAULT_URL})")
    parser.add_argument("--name", dest="display_name", default="bot", help="display name (default: bot)")
    parser.add_argument("--mode", choices=MODES, default="video", help="call mode (default: video)")
    parser.add_argument("--topic", dest="topics", action="append", default=[], metavar="TOPIC",
                        help="a topic to match on; repeatable, commas allowed")
    parser.add_argument("--seniority", help="intern, junior, mid, senior, staff or principal")
    parser.add_argument("--calls", type=_positive_int, default=1, help="calls to take before stopping (default 1)")
    parser.add_argument("--call-seconds", type=_seconds, default=5.0, metavar="S",
                        help="stay S seconds after the first remote frame, then end the call; "
                        "0 = until the partner ends it (default 5)")
    parser.add_argument("--skip-after", type=_seconds, metavar="S", help="skip each match S seconds after it is found")
    parser.add_argument("--ice-host", dest="ice_hosts", action="append", type=_ip, metavar="IP",
                        help="only offer ICE host candidates on this local IP (repeatable), e.g. 127.0.0.1")
    parser.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                        help="bound on the whole run, per bot (default 60)")
    parser.add_argument("--chat", metavar="TEXT", help="send this chat message once in each call")
    parser.add_argument("--resume-after", type=_seconds, metavar="S",
                        help="drop the socket S seconds into each call and reconnect with the same token")
    parser.add_argument("--count", type=_positive_int, default=1, help="run N bots in this process (default 1)")
    parser.add_argument("--fps", type=_positive_int, default=15, help="synthetic video frame rate (default 15)")
    parser.add_argument("--verbose", "-v", action="count", default=0, help="log to stderr (-vv: debug)")


def options_from_args(args: argparse.Namespace) -> BotOptions:
    topics = [t.strip() for item in (args.topics or []) for t in item.split(",") if t.strip()]
    return BotOptions(
        url=args.url,
        display_name=args.display_name,
        mode=args.mode,
        topics=topics,
        seniority=args.seniority,
        calls=args.calls,
        call_seconds=args.call_seconds,
        skip_after=args.skip_after,
        ice_hosts=args.ice_hosts,
        timeout=args.timeout,
        chat=args.chat,
        resume_after=args.resume_after,
        fps=args.fps,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """`pairwire bot`: run the bot(s), progress on stderr, report JSON on stdout; 0 if all ok."""
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"pairwire bot: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        reports = asyncio.run(run_bots(options, args.count, progress=progress))
    except KeyboardInterrupt:
        print("pairwire bot: interrupted", file=sys.stderr)
        return 130
    summary = summarize(reports)
    print(json.dumps(summary, indent=2), flush=True)
    return 0 if summary["ok"] else 1
