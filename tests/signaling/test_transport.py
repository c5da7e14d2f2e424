"""The websocket transport and the inline events, with real clients against a bare Socket.IO server.

The server here is python-socketio with `transport.install` and nothing of Pairwire's, so each
test shows one property of the transport: delivery and order, the polling upgrade, inline
handling, and closing (server disconnect, ping timeout, a client that vanishes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from signaling import transport
from signaling.inline import InlineEvents

WAIT = 10  # seconds any single step may take before the test fails


@dataclass
class Bare:
    url: str
    sio: socketio.AsyncServer
    inline: InlineEvents
    disconnects: list[tuple[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def bare() -> AsyncIterator[Bare]:
    # One-second pings so that a silent client is found within a few seconds.
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=1, ping_timeout=1,
                               logger=False, engineio_logger=False)
    inline = InlineEvents(sio)
    transport.install(sio.eio, inline)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state = Bare(f"http://127.0.0.1:{port}", sio, inline)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        state.connected.set()

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        state.disconnects.append((sid, reason))
        state.gone.set()

    try:
        yield state
    finally:
        await sio.shutdown()
        await runner.cleanup()


async def _client(url: str, transports: list[str] | None = None) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=transports or ["websocket"], wait_timeout=WAIT)
    return client


def _count_to(client: socketio.AsyncClient, count: int) -> tuple[list[int], asyncio.Event]:
    """Record the numbers of the "n" events `client` receives; the event is set at the last one."""
    got: list[int] = []
    done = asyncio.Event()

    @client.on("n")
    async def on_n(n: int) -> None:
        got.append(n)
        if n == count - 1:
            done.set()

    return got, done


async def _raw(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """An engine.io websocket without a Socket.IO client: it answers nothing unless told to."""
    ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
    opening = await ws.receive_str(timeout=WAIT)
    assert opening.startswith("0{")
    return ws


async def test_events_both_ways_and_server_sends_arrive_in_order(bare: Bare) -> None:
    @bare.sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        for n in range(300):
            await bare.sio.emit("n", n, to=sid)
        return {"echo": data}

    client = socketio.AsyncClient(reconnection=False)
    got, done = _count_to(client, 300)
    await client.connect(bare.url, transports=["websocket"], wait_timeout=WAIT)
    try:
        assert await client.call("echo", {"x": 1}, timeout=WAIT) == {"echo": {"x": 1}}
        await asyncio.wait_for(done.wait(), WAIT)
        assert got == list(range(300))
    finally:
        await client.disconnect()


async def test_a_polling_client_upgrades_and_nothing_sent_meanwhile_is_lost(bare: Bare) -> None:
    """Browsers start on long-polling; sends made during the upgrade are held, then written."""

    @bare.sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        async def burst() -> None:
            for n in range(200):
                await bare.sio.emit("n", n, to=sid)
                await asyncio.sleep(0)

        bare.sio.start_background_task(burst)

    client = socketio.AsyncClient(reconnection=False)
    got, done = _count_to(client, 200)
    await client.connect(bare.url, transports=["polling", "websocket"], wait_timeout=WAIT)
    try:
        await asyncio.wait_for(done.wait(), WAIT)
        assert got == list(range(200))
        for _ in range(100):
            if client.transport() == "websocket":
                break
            await asyncio.sleep(0.05)
        assert client.transport() == "websocket"
        bare.inline.add("fast", _answer)
        assert await client.call("fast", {"after": "upgrade"}, timeout=WAIT) == {"got": {"after": "upgrade"}}
    finally:
        await client.disconnect()


async def _answer(sid: str, data: Any) -> Any:
    return {"got": data}


async def test_inline_events_run_on_the_reading_connection_in_order(bare: Bare) -> None:
    gate = asyncio.Event()
    log: list[str] = []

    async def first(sid: str, data: Any) -> Any:
        log.append("first started")
        await gate.wait()
        log.append("first done")
        return {"ok": True}

    async def second(sid: str, data: Any) -> Any:
        log.append("second")
        return {"ok": True}

    for name, handler in (("first", first), ("second", second)):
        bare.sio.on(name, handler)
        bare.inline.add(name, handler)
    client = await _client(bare.url)
    try:
        one = asyncio.ensure_future(client.call("first", {}, timeout=WAIT))
        two = asyncio.ensure_future(client.call("second", {}, timeout=WAIT))
        await asyncio.sleep(0.3)
        # python-socketio would have started `second` in a task of its own by now.
        assert log == ["first started"]
        gate.set()
        assert await asyncio.gather(one, two) == [{"ok": True}, {"ok": True}]
        assert log == ["first started", "first done", "second"]
    finally:
        await client.disconnect()


async def test_inline_acknowledgements_have_python_socketio_shapes(bare: Bare) -> None:
    results: dict[str, Any] = {"none": None, "pair": ("a", 2), "one": {"k": [1, 2]}, "binary": {"b": b"\x00\x01"}}
    tasks: list[asyncio.Task[Any] | None] = []

    def handler_for(result: Any) -> Any:
        async def handler(sid: str, data: Any) -> Any:
            tasks.append(asyncio.current_task())
            return result
        return handler

    for name, result in results.items():
        bare.inline.add(name, handler_for(result))
    client = await _client(bare.url)
    acks: dict[str, Any] = {}
    try:
        for name in results:
            arrived: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await client.emit(name, {}, callback=lambda *args, f=arrived: f.set_result(args))
            acks[name] = await asyncio.wait_for(arrived, WAIT)
        assert acks == {"none": (), "pair": ("a", 2), "one": ({"k": [1, 2]},), "binary": ({"b": b"\x00\x01"},)}
        # All four ran in the one task that reads this connection, none in a task of its own.
        assert len(tasks) == 4 and len(set(map(id, tasks))) == 1
    finally:
        await client.disconnect()


async def test_shapes_inline_does_not_know_go_to_python_socketio(bare: Bare) -> None:
    calls: list[tuple[tuple[Any, ...], asyncio.Task[Any] | None]] = []

    async def fast(sid: str, *args: Any) -> Any:
        calls.append((args, asyncio.current_task()))
        return {"n": len(args)}

    bare.sio.on("fast", fast)
    bare.inline.add("fast", fast)
    client = await _client(bare.url)
    try:
        assert await client.call("fast", {"a": 1}, timeout=WAIT) == {"n": 1}
        assert await client.call("fast", {"a": 2}, timeout=WAIT) == {"n": 1}
        # Two arguments: not the inline shape, so python-socketio dispatches it, in a new task.
        assert await client.call("fast", ({"a": 3}, "more"), timeout=WAIT) == {"n": 2}
        inline_task = calls[0][1]
        assert calls[1][1] is inline_task and calls[2][1] is not inline_task
        assert [args for args, _ in calls] == [({"a": 1},), ({"a": 2},), ({"a": 3}, "more")]
    finally:
        await client.disconnect()


async def test_an_event_before_the_namespace_is_connected_is_not_handled(bare: Bare) -> None:
    calls: list[Any] = []

    async def fast(sid: str, data: Any) -> Any:
        calls.append(data)
        return {}

    bare.sio.on("fast", fast)
    bare.inline.add("fast", fast)
    async with aiohttp.ClientSession() as http:
        ws = await _raw(http, bare.url)
        await ws.send_str('421["fast",{"early":true}]')
        await _join_namespace(ws)
        await ws.send_str('422["fast",{"late":true}]')
        assert await ws.receive_str(timeout=WAIT) == "432[{}]"
        await ws.close()
    assert calls == [{"late": True}]


async def test_a_server_disconnect_reaches_the_client(bare: Bare) -> None:
    client = await _client(bare.url)
    gone = asyncio.Event()
    client.on("disconnect", lambda *reason: gone.set())
    sid = client.get_sid()
    await bare.sio.disconnect(sid)
    await asyncio.wait_for(gone.wait(), WAIT)
    await _until(lambda: not bare.sio.eio.sockets)


async def test_engine_io_closing_a_socket_closes_its_websocket(bare: Bare) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await _raw(http, bare.url)
        await _join_namespace(ws)
        (eio_sid,) = bare.sio.eio.sockets
        await bare.sio.eio.disconnect(eio_sid)
        frames, end = await _texts_until_closed(ws)
        assert frames == ["1"]  # engine.io CLOSE, then the websocket's own close
        assert end is aiohttp.WSMsgType.CLOSE
    await _until(lambda: not bare.sio.eio.sockets)


async def test_a_client_that_stops_answering_pings_is_closed(bare: Bare) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await _raw(http, bare.url)
        await _join_namespace(ws)
        seen, end = await _texts_until_closed(ws)  # never answering the server's "2" (ping)
        assert "2" in seen
        assert end is aiohttp.WSMsgType.CLOSE
    await asyncio.wait_for(bare.gone.wait(), WAIT)
    assert [reason for _, reason in bare.disconnects] == [bare.sio.reason.PING_TIMEOUT]
    await _until(lambda: not bare.sio.eio.sockets)


async def test_a_client_that_vanishes_mid_stream_is_cleaned_up(bare: Bare) -> None:
    @bare.sio.on("flood")
    async def flood(sid: str, data: Any) -> None:
        for _ in range(2000):
            await bare.sio.emit("x", "y" * 1000, to=sid)

    async with aiohttp.ClientSession() as http:
        ws = await _raw(http, bare.url)
        await _join_namespace(ws)
        await ws.send_str('42["flood",{}]')
        await ws.receive(timeout=WAIT)
        ws._response.connection.transport.abort()  # type: ignore[union-attr]
    await asyncio.wait_for(bare.gone.wait(), WAIT)
    assert [reason for _, reason in bare.disconnects] == [bare.sio.reason.TRANSPORT_CLOSE]
    await _until(lambda: not bare.sio.eio.sockets)


async def _join_namespace(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str("40")
    assert (await ws.receive_str(timeout=WAIT)).startswith("40{")


async def _texts_until_closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[str], aiohttp.WSMsgType]:
    """Every text frame until the connection ends, and how it ended."""
    texts = []
    while True:
        msg = await ws.receive(timeout=WAIT)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return texts, msg.type
        texts.append(msg.data)


async def _until(condition: Any) -> None:
    for _ in range(WAIT * 20):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")
