"""Real aiortc calls between two CallPeers on 127.0.0.1, plus the ICE/SDP/synthetic-video helpers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aioice
import aioice.ice
import pytest
from aiortc.mediastreams import MediaStreamError

from media.ice import (
    current_host_addresses,
    is_mdns_candidate,
    restrict_host_addresses,
    strip_mdns_candidates,
)
from media.peer import OFFER_ID, CallPeer, parse_ice_candidate, to_rtc_ice_servers
from media.synthetic import SyntheticVideoTrack, render_frame

LOOPBACK = ["127.0.0.1"]
CALL_TIMEOUT = 20.0
CANDIDATE_RE = re.compile(r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)", re.M)


# -- helpers -------------------------------------------------------------------


class Relay:
    """In-memory stand-in for the Socket.IO relay: JSON round-trip, in-order delivery per side."""

    def __init__(self) -> None:
        self.peers: dict[str, CallPeer] = {}
        self.queues: dict[str, asyncio.Queue[tuple[str, Any]]] = {
            "a": asyncio.Queue(),
            "b": asyncio.Queue(),
        }
        self.log: list[tuple[str, str, Any]] = []  # (to, kind, data)
        self.errors: list[BaseException] = []
        # Optional rewrite hook: (to, kind, data) -> list of (kind, data) actually delivered.
        self.rewrite: Callable[[str, str, Any], list[tuple[str, Any]]] | None = None
        self._pumps: list[asyncio.Task[None]] = []

    def sender(self, to: str) -> Callable[[str, dict], Awaitable[None]]:
        async def send(kind: str, data: dict) -> None:
            wire = json.loads(json.dumps({"kind": kind, "data": data}))  # proves serialisability
            self.log.append((to, wire["kind"], wire["data"]))
            messages = [(wire["kind"], wire["data"])]
            if self.rewrite is not None:
                messages = self.rewrite(to, wire["kind"], wire["data"])
            for message in messages:
                await self.queues[to].put(message)

        return send

    def peer(self, name: str, *, initiator: bool, **kwargs: Any) -> CallPeer:
        other = "b" if name == "a" else "a"
        kwargs.setdefault("host_addresses", LOOPBACK)
        peer = CallPeer(ice_servers=[], send_signal=self.sender(other), initiator=initiator, **kwargs)
        self.peers[name] = peer
        return peer

    def start_pumps(self) -> None:
        for name in self.queues:
            self._pumps.append(asyncio.create_task(self._pump(name)))

    async def _pump(self, name: str) -> None:
        while True:
            kind, data = await self.queues[name].get()
            try:
                await self.peers[name].handle_signal(kind, data)
            except Exception as exc:  # surfaced by the test via relay.errors
                self.errors.append(exc)

    async def close(self) -> None:
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await asyncio.gather(*(peer.close() for peer in self.peers.values()))


@pytest.fixture
async def relay() -> Any:
    r = Relay()
    yield r
    await r.close()


def sdp_candidates(sdp: str) -> list[dict[str, str]]:
    """Parse ``a=candidate`` lines of an SDP blob."""
    keys = ("foundation", "component", "protocol", "priority", "ip", "port", "type")
    return [dict(zip(keys, match)) for match in CANDIDATE_RE.findall(sdp)]


def strip_candidates(sdp: str) -> str:
    """Make an SDP look like a trickling browser's: no candidates, no end-of-candidates."""
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


def chrome_candidate(c: dict[str, str], ufrag: str = "Ab1c") -> dict[str, Any]:
    """Format a candidate the way Chrome's RTCIceCandidate.toJSON() does."""
    return {
        "candidate": (
            f"candidate:{c['foundation']} {c['component']} {c['protocol'].lower()} {c['priority']} "
            f"{c['ip']} {c['port']} typ {c['type']} generation 0 ufrag {ufrag} network-id 1 network-cost 10"
        ),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": ufrag,
    }


def remote_candidates(peer: CallPeer) -> list[tuple[str, int]]:
    """(ip, port) of the remote candidates known to the peer's (bundled) ICE transport."""
    assert peer.pc is not None
    ice = peer.pc.getTransceivers()[0].receiver.transport.transport
    return [(c.ip, c.port) for c in ice.getRemoteCandidates()]


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def first_signal(relay: Relay, to: str, kind: str) -> dict[str, Any]:
    return next(data for dest, k, data in relay.log if dest == to and k == kind)


# -- synthetic video -----------------------------------------------------------


async def test_synthetic_track_produces_paced_moving_frames() -> None:
    track = SyntheticVideoTrack(width=160, height=120, fps=50)
    loop = asyncio.get_running_loop()
    began = loop.time()
    frames = [await track.recv() for _ in range(5)]
    elapsed = loop.time() - began

    assert [(f.width, f.height, f.format.name) for f in frames] == [(160, 120, "yuv420p")] * 5
    assert [f.pts for f in frames] == [0, 1800, 3600, 5400, 7200]  # 90 kHz / 50 fps
    assert elapsed >= 4 / 50 - 0.01  # paced, not a busy loop
    lumas = [bytes(f.planes[0]) for f in frames]
    assert len(set(lumas)) == 5  # the pattern moves every frame
    assert track.frames_produced == 5

    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_render_frame_handles_odd_strides_and_rejects_bad_sizes() -> None:
    frame = render_frame(123456, 1280, 720)
    assert (frame.width, frame.height) == (1280, 720)
    assert render_frame(0, 16, 16).planes[0].buffer_size >= 16 * 16
    with pytest.raises(ValueError):
        SyntheticVideoTrack(width=321, height=240)
    with pytest.raises(ValueError):
        SyntheticVideoTrack(fps=0)


# -- ICE restriction -----------------------------------------------------------


async def test_restrict_host_addresses_limits_aioice_gathering() -> None:
    connection = aioice.Connection(ice_controlling=True)
    try:
        with restrict_host_addresses(["127.0.0.1"]) as addresses:
            assert addresses == ("127.0.0.1",)
            assert current_host_addresses() == ("127.0.0.1",)
            await connection.gather_candidates()
        assert [(c.host, c.type) for c in connection.local_candidates] == [("127.0.0.1", "host")]
    finally:
        await connection.close()
    assert current_host_addresses() is None
    # Unrestricted again: stock aioice behaviour, which never offers loopback.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    # use_ipv4/use_ipv6 are still honoured for restricted addresses.
    with restrict_host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == ["::1"]
    with pytest.raises(ValueError):
        with restrict_host_addresses(["localhost"]):
            pass


async def test_restriction_is_scoped_to_its_task() -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def restricted() -> list[str]:
        with restrict_host_addresses(["127.0.0.1"]):
            inside.set()
            await release.wait()
            return aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)

    task = asyncio.create_task(restricted())
    await inside.wait()
    # Another task in the same loop, while the restriction is active there, is unaffected.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    release.set()
    assert await task == ["127.0.0.1"]


async def test_local_sdp_candidates_are_loopback_only(relay: Relay) -> None:
    relay.peer("a", initiator=True)
    relay.peer("b", initiator=False)
    relay.start_pumps()
    await relay.peers["b"].start()
    await relay.peers["a"].start()
    await wait_until(lambda: any(k == "answer" for _, k, _ in relay.log), CALL_TIMEOUT)

    for sdp in (first_signal(relay, "b", "offer")["sdp"], first_signal(relay, "a", "answer")["sdp"]):
        candidates = sdp_candidates(sdp)
        assert candidates, sdp
        assert {(c["ip"], c["type"]) for c in candidates} == {("127.0.0.1", "host")}
        assert "a=end-of-candidates" in sdp  # aiortc gathers fully before signalling
    assert not relay.errors


# -- full calls ----------------------------------------------------------------


async def test_two_peers_exchange_video(relay: Relay, network_guard: list[Any]) -> None:
    ticks: list[float] = []
    loop = asyncio.get_running_loop()

    def clock() -> float:
        ticks.append(loop.time())
        return 1000.0 + loop.time()

    a = relay.peer("a", initiator=True, clock=clock)
    b = relay.peer("b", initiator=False)
    assert a.connection_state == "new"
    relay.start_pumps()
    await b.start()
    await a.start()

    got = await asyncio.gather(a.wait_for_frames(10, CALL_TIMEOUT), b.wait_for_frames(10, CALL_TIMEOUT))
    assert got[0] >= 10 and got[1] >= 10
    assert a.frames_sent >= 10 and b.frames_sent >= 10
    assert a.connection_state == b.connection_state == "connected"
    assert a.started_at is not None and a.first_frame_at is not None
    assert 1000.0 <= a.started_at < a.first_frame_at  # the injected clock is used
    assert b.started_at is not None and b.first_frame_at is not None
    assert b.started_at < b.first_frame_at
    assert [k for _, k, _ in relay.log] == ["offer", "answer"]  # aiortc does not trickle
    assert not relay.errors
    assert network_guard and all(d[0] == "127.0.0.1" for d in network_guard)

    await a.close()
    await a.close()  # idempotent
    assert a.connection_state == "closed"
    # Once closed, waiting returns at once instead of hanging until the timeout.
    assert await a.wait_for_frames(10**6, 5) == a.frames_received
    await b.close()
    assert b.connection_state == "closed"
    await a.handle_signal("candidate", None)  # late signals after close are ignored


async def test_call_with_browser_style_trickled_candidates(relay: Relay) -> None:
    """Initiator's candidates reach the answerer only as Chrome-style trickle, some before the offer."""

    def browserise(to: str, kind: str, data: Any) -> list[tuple[str, Any]]:
        if kind != "offer":
            return [(kind, data)]
        trickle = [("candidate", chrome_candidate(c)) for c in sdp_candidates(data["sdp"])]
        offer = ("offer", {"type": "offer", "sdp": strip_candidates(data["sdp"])})
        # Relay reordering: candidates overtake the offer; end-of-candidates in every form.
        return [*trickle, offer, ("candidate", {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}),
                ("candidate", None), ("candidate", {})]

    relay.rewrite = browserise
    a = relay.peer("a", initiator=True)
    b = relay.peer("b", initiator=False)
    relay.start_pumps()
    await b.start()
    await a.start()

    await asyncio.gather(a.wait_for_frames(10, CALL_TIMEOUT), b.wait_for_frames(10, CALL_TIMEOUT))
    offered = sdp_candidates(first_signal(relay, "b", "offer")["sdp"])
    assert {("127.0.0.1", int(c["port"])) for c in offered} <= set(remote_candidates(b))
    assert not relay.errors


async def test_text_mode_connects_without_media(relay: Relay) -> None:
    a = relay.peer("a", initiator=True, video=False)
    b = relay.peer("b", initiator=False, video=False)
    relay.start_pumps()
    await b.start()
    await a.start()
    assert "m=application" in first_signal(relay, "b", "offer")["sdp"]
    await wait_until(lambda: a.connection_state == b.connection_state == "connected", CALL_TIMEOUT)
    assert (a.frames_sent, b.frames_sent, a.frames_received) == (0, 0, 0)
    with pytest.raises(asyncio.TimeoutError):
        await a.wait_for_frames(1, 0.3)


# -- signalling edge cases -------------------------------------------------------


async def _answerer_with_offer(relay: Relay) -> tuple[CallPeer, CallPeer, dict[str, Any]]:
    """Start both peers but hold every signal, so nothing connects: deterministic state."""
    a = relay.peer("a", initiator=True)
    b = relay.peer("b", initiator=False)
    await b.start()
    await a.start()
    kind, offer = relay.queues["b"].get_nowait()
    assert kind == "offer"
    return a, b, offer


async def test_trickled_candidates_are_buffered_until_the_offer(relay: Relay) -> None:
    a, b, offer = await _answerer_with_offer(relay)
    (own,) = sdp_candidates(offer["sdp"])
    firefox_style = {"candidate": "candidate:0 1 UDP 2122252543 127.0.0.1 9 typ host",
                     "sdpMid": None, "sdpMLineIndex": 0}

    end_markers = (None, {}, {"candidate": ""}, {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0})

    # Before the remote description: aiortc alone would drop it with a warning.
    await b.handle_signal("candidate", chrome_candidate(own))
    for end in end_markers:
        await b.handle_signal("candidate", end)
    assert remote_candidates(b) == []

    await b.handle_signal("offer", {"type": "offer", "sdp": strip_candidates(offer["sdp"])})
    # The answer was sent; it is held in the relay, so "a" never sends checks to "b" and
    # "b" cannot have learned a's address as peer-reflexive: only trickle can explain it.
    assert relay.queues["a"].get_nowait()[0] == "answer"
    assert remote_candidates(b) == [("127.0.0.1", int(own["port"]))]

    # End-of-candidates is ignored, so a candidate after it is still accepted
    # (forwarded to aiortc, the marker would make it drop every later candidate).
    for end in end_markers:
        await b.handle_signal("candidate", end)
    await b.handle_signal("candidate", firefox_style)
    assert ("127.0.0.1", 9) in remote_candidates(b)


async def test_unknown_or_malformed_signals_raise(relay: Relay) -> None:
    a, b, offer = await _answerer_with_offer(relay)
    for peer in (a, b):
        for kind in ("bye", "Offer", "", "ice"):
            with pytest.raises(ValueError, match="unknown signal kind"):
                await peer.handle_signal(kind, {})
    with pytest.raises(ValueError):
        await b.handle_signal("offer", {"type": "offer"})
    with pytest.raises(ValueError):
        await b.handle_signal("offer", {"type": "answer", "sdp": offer["sdp"]})
    with pytest.raises(ValueError):
        await b.handle_signal("candidate", {"candidate": "candidate:1 1 udp", "sdpMid": "0"})
    with pytest.raises(ValueError):
        await b.handle_signal("candidate", {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
    # Unknown kinds raise even before start() and after close().
    fresh = CallPeer(ice_servers=[], send_signal=relay.sender("a"), initiator=False)
    with pytest.raises(ValueError):
        await fresh.handle_signal("hangup", {})
    await fresh.close()
    with pytest.raises(ValueError):
        await fresh.handle_signal("hangup", {})


async def test_glare_and_stray_answers_are_ignored(relay: Relay) -> None:
    a, b, offer = await _answerer_with_offer(relay)
    # Glare: "b" (wrongly) offers too; the initiator keeps its own offer.
    captured: list[tuple[str, dict]] = []

    async def capture(kind: str, data: dict) -> None:
        captured.append((kind, data))

    glare_peer = CallPeer(ice_servers=[], send_signal=capture, initiator=True, host_addresses=LOOPBACK)
    await glare_peer.start()
    await a.handle_signal("offer", captured[0][1])
    assert a.pc is not None and a.pc.signalingState == "have-local-offer"
    assert relay.queues["b"].empty()  # no answer was sent for the ignored offer
    await glare_peer.close()

    # A stray answer to the answerer (who never offered) is ignored too.
    await b.handle_signal("answer", {"type": "answer", "sdp": offer["sdp"]})
    assert b.pc is not None and b.pc.signalingState == "stable"

    # The call still completes once the held offer is delivered.
    relay.queues["b"].put_nowait(("offer", offer))
    relay.start_pumps()
    await asyncio.gather(a.wait_for_frames(10, CALL_TIMEOUT), b.wait_for_frames(10, CALL_TIMEOUT))
    assert not relay.errors


async def test_answer_to_an_earlier_offer_is_ignored(relay: Relay) -> None:
    """After a rebuild, the answer to the previous peer's offer must not be applied to the new one."""
    a, b, offer = await _answerer_with_offer(relay)
    assert isinstance(offer.get(OFFER_ID), str)

    # The answer "b" gives echoes the offer's id.
    await b.handle_signal("offer", offer)
    kind, answer = relay.queues["a"].get_nowait()
    assert kind == "answer" and answer[OFFER_ID] == offer[OFFER_ID]

    # An answer echoing another offer (that of a peer "a" replaced) is dropped...
    await a.handle_signal("answer", {**answer, OFFER_ID: "0123456789abcdef"})
    assert a.pc is not None and a.pc.signalingState == "have-local-offer"
    # ...the right one is applied, and the call completes.
    relay.queues["a"].put_nowait(("answer", answer))
    relay.start_pumps()
    await asyncio.gather(a.wait_for_frames(5, CALL_TIMEOUT), b.wait_for_frames(5, CALL_TIMEOUT))
    assert b.has_remote_description and a.has_remote_description
    assert not relay.errors


async def test_answer_without_offer_id_is_accepted(relay: Relay) -> None:
    """A browser's answer carries no pairwireOfferId: it is applied as usual."""
    a, b, offer = await _answerer_with_offer(relay)
    await b.handle_signal("offer", {k: v for k, v in offer.items() if k != OFFER_ID})
    kind, answer = relay.queues["a"].get_nowait()
    assert kind == "answer" and OFFER_ID not in answer
    await a.handle_signal("answer", answer)
    assert a.pc is not None and a.pc.signalingState == "stable"


async def test_mdns_candidates_are_dropped_when_restricted(relay: Relay) -> None:
    a, b, offer = await _answerer_with_offer(relay)
    mdns_line = "candidate:1 1 udp 2122260223 3d5e1c92-4f0b-4b43-9b1d-3a3c2f6f7c10.local 54321 typ host"
    sdp = strip_candidates(offer["sdp"]).replace(
        "a=ice-ufrag", f"a={mdns_line}\r\na=ice-ufrag", 1
    )
    assert is_mdns_candidate(f"a={mdns_line}") and mdns_line not in strip_mdns_candidates(sdp)
    await b.handle_signal("offer", {"type": "offer", "sdp": sdp})
    await b.handle_signal("candidate", {"candidate": mdns_line, "sdpMid": "0", "sdpMLineIndex": 0})
    assert remote_candidates(b) == []  # the network_guard fixture fails if mDNS was attempted


# -- pure helpers ----------------------------------------------------------------


def test_parse_ice_candidate_and_ice_servers() -> None:
    chrome = parse_ice_candidate({
        "candidate": "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ srflx "
        "raddr 0.0.0.0 rport 0 generation 0 ufrag abcd network-id 1 network-cost 10",
        "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd",
    })
    assert chrome is not None
    assert (chrome.foundation, chrome.ip, chrome.port, chrome.type, chrome.relatedPort) == (
        "842163049", "127.0.0.1", 50000, "srflx", 0)
    assert (chrome.sdpMid, chrome.sdpMLineIndex) == ("0", 0)
    for end in (None, {}, {"candidate": ""}, {"candidate": None, "sdpMid": "0"}):
        assert parse_ice_candidate(end) is None

    servers = to_rtc_ice_servers([
        {"urls": "stun:stun.example.org"},
        {"urls": ["turn:turn.example.org?transport=udp"], "username": "u", "credential": "p"},
    ])
    assert [(s.urls, s.username, s.credential) for s in servers] == [
        ("stun:stun.example.org", None, None),
        (["turn:turn.example.org?transport=udp"], "u", "p"),
    ]
    with pytest.raises(ValueError):
        to_rtc_ice_servers([{"url": "stun:x"}])
    assert to_rtc_ice_servers([]) == []
