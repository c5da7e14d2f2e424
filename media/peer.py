"""One side of a Pairwire call as a real aiortc WebRTC peer (used by bots and media tests).

Signalling data uses the browser wire format, so a bot and a browser can call
each other through the same relay:

* ``("offer" | "answer", {"type": "offer" | "answer", "sdp": str})`` (an
  ``RTCSessionDescriptionInit``);
  A ``CallPeer`` adds ``"pairwireOfferId"`` to its offers and echoes it in its answers;
  an initiator drops an answer echoing another offer's id (a stale answer from before a
  rebuild). Browsers ignore the extra member, and answers without it are accepted.
* ``("candidate", {"candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0})``
  (an ``RTCIceCandidateInit``); ``None``, ``{}`` or an empty ``candidate`` string
  means end-of-candidates and is ignored.

aiortc does not trickle: after ``setLocalDescription()`` its SDP already holds
all local candidates, so a ``CallPeer`` never *sends* ``candidate`` signals, but
it accepts candidates trickled by a browser, including ones that arrive before
the offer they belong to (they are buffered until the remote description is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from .ice import is_mdns_address, restrict_host_addresses, strip_mdns_candidates
from .synthetic import SyntheticVideoTrack

__all__ = [
    "OFFER_ID",
    "CallPeer",
    "SendSignal",
    "SIGNAL_KINDS",
    "parse_ice_candidate",
    "to_rtc_ice_servers",
]

logger = logging.getLogger(__name__)

SendSignal = Callable[[str, dict], Awaitable[None]]
"""Coroutine delivering one signalling message ``(kind, data)`` to the other side."""

SIGNAL_KINDS = frozenset({"offer", "answer", "candidate"})

OFFER_ID = "pairwireOfferId"
"""Extra member of offer/answer data: the offer's id, echoed by the answer (see module doc)."""


def to_rtc_ice_servers(servers: Sequence[Mapping[str, Any]]) -> list[RTCIceServer]:
    """Convert browser-style ``RTCIceServer`` dicts (``urls``, ``username``, ``credential``)."""
    result = []
    for server in servers:
        urls = server.get("urls")
        if isinstance(urls, str):
            urls_value: str | list[str] = urls
        elif isinstance(urls, Sequence) and urls and all(isinstance(u, str) for u in urls):
            urls_value = list(urls)
        else:
            raise ValueError(f"ICE server needs 'urls' (a string or list of strings): {server!r}")
        result.append(
            RTCIceServer(
                urls=urls_value,
                username=server.get("username"),
                credential=server.get("credential"),
            )
        )
    return result


def parse_ice_candidate(data: Mapping[str, Any] | None) -> RTCIceCandidate | None:
    """Turn an ``RTCIceCandidateInit`` dict into an aiortc candidate; None means end-of-candidates.

    Raises ValueError for malformed input.
    """
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError(f"candidate data must be an object or null, got {type(data).__name__}")
    line = data.get("candidate")
    if line is None or line == "":
        return None
    if not isinstance(line, str):
        raise ValueError("candidate 'candidate' must be a string")
    value = line.strip()
    # Browsers send "candidate:..." (the a= attribute without "a="); tolerate "a=" too.
    if value.startswith("a="):
        value = value[2:]
    if value.startswith("candidate:"):
        value = value[len("candidate:") :]
    if not value:
        return None
    try:
        candidate = candidate_from_sdp(value)
    except (AssertionError, ValueError, IndexError) as exc:
        # candidate_from_sdp asserts on short lines and int()s ports/priorities.
        raise ValueError(f"malformed ICE candidate {line!r}") from exc

    sdp_mid = data.get("sdpMid")
    sdp_mline_index = data.get("sdpMLineIndex")
    if sdp_mid is not None and not isinstance(sdp_mid, str):
        raise ValueError("candidate 'sdpMid' must be a string or null")
    if sdp_mline_index is not None and (
        isinstance(sdp_mline_index, bool) or not isinstance(sdp_mline_index, int)
    ):
        raise ValueError("candidate 'sdpMLineIndex' must be an integer or null")
    if sdp_mid is None and sdp_mline_index is None:
        raise ValueError("candidate needs 'sdpMid' or 'sdpMLineIndex'")
    candidate.sdpMid = sdp_mid
    candidate.sdpMLineIndex = sdp_mline_index
    return candidate


def _offer_id(data: Mapping[str, Any] | None) -> str | None:
    """The ``pairwireOfferId`` of offer/answer data, None when absent (e.g. from a browser)."""
    value = data.get(OFFER_ID) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) and value else None


def _description(kind: str, data: Mapping[str, Any]) -> RTCSessionDescription:
    """Validate an offer/answer payload and build the aiortc description."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{kind} data must be an object")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise ValueError(f"{kind} data needs a non-empty 'sdp' string")
    if data.get("type", kind) != kind:
        raise ValueError(f"{kind} signal carries type {data.get('type')!r}")
    return RTCSessionDescription(sdp=sdp, type=kind)


class CallPeer:
    """One side of a one-to-one WebRTC call: sends a synthetic video track, counts received frames.

    Roles are fixed by the matcher: the ``initiator`` sends the offer, the other
    side answers. Glare is handled by that role split: an initiator with an offer
    outstanding ignores an incoming offer (it is the "impolite" peer), and stray
    answers are ignored; neither raises, so a confused remote cannot crash us.

    ``host_addresses`` (not in a browser's API) restricts ICE host candidates to
    the given local IPs, e.g. ``["127.0.0.1"]`` for tests; it also makes the peer
    drop remote mDNS (``.local``) candidates so no multicast query leaves the host.
    """

    def __init__(
        self,
        *,
        ice_servers: list[dict],
        send_signal: SendSignal,
        initiator: bool,
        video: bool = True,
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        clock: Callable[[], float] = time.monotonic,
        host_addresses: Sequence[str] | None = None,
    ) -> None:
        # Convert now so a bad configuration fails at construction, not mid-call.
        self._ice_servers = to_rtc_ice_servers(ice_servers)
        self._send_signal = send_signal
        self.initiator = initiator
        self.video = video
        self._width, self._height, self._fps = width, height, fps
        self._clock = clock
        self._host_addresses = tuple(host_addresses) if host_addresses is not None else None

        self.frames_received = 0
        """Decoded remote video frames so far."""
        self.started_at: float | None = None
        """``clock()`` when :meth:`start` was called."""
        self.first_frame_at: float | None = None
        """``clock()`` when the first remote frame was decoded."""

        self._pc: RTCPeerConnection | None = None
        self._local_track: SyntheticVideoTrack | None = None
        self._remote_tasks: set[asyncio.Task[None]] = set()
        self._remote_ended = False
        self._have_remote_description = False
        self._pending_candidates: list[RTCIceCandidate] = []
        self._offer_id: str | None = None  # id of our outstanding offer (initiator)
        self._answered_offer_id: str | None = None  # id of the remote offer we answer, if it had one
        self._signal_lock = asyncio.Lock()
        self._frames_changed = asyncio.Condition()
        self._close_task: asyncio.Future[None] | None = None

    # -- state -----------------------------------------------------------------

    @property
    def frames_sent(self) -> int:
        """Frames the local synthetic track has handed to the encoder."""
        return self._local_track.frames_produced if self._local_track else 0

    @property
    def connection_state(self) -> str:
        """``RTCPeerConnection.connectionState``: new, connecting, connected, failed or closed."""
        if self._close_task is not None:
            return "closed"
        return self._pc.connectionState if self._pc else "new"

    @property
    def pc(self) -> RTCPeerConnection | None:
        """The underlying peer connection (for diagnostics), None before :meth:`start`."""
        return self._pc

    @property
    def has_remote_description(self) -> bool:
        """True once a remote offer or answer has been applied."""
        return self._have_remote_description

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._close_task is not None

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Create the peer connection and local track; the initiator also sends the offer."""
        if self._pc is not None or self._close_task is not None:
            raise RuntimeError("CallPeer.start() may only be called once, before close()")
        self.started_at = self._clock()
        configuration = RTCConfiguration(
            # Always explicit: iceServers=None would make aiortc use Google's STUN server.
            iceServers=list(self._ice_servers),
            # Text mode has no track; negotiate a data transport anyway so the offer is
            # not empty and connection_state still reflects real ICE/DTLS connectivity.
            alwaysNegotiateDataChannels=not self.video,
        )
        pc = self._pc = RTCPeerConnection(configuration)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state_change)
        if self.video:
            self._local_track = SyntheticVideoTrack(self._width, self._height, self._fps)
            pc.addTrack(self._local_track)
        if self.initiator:
            async with self._signal_lock:
                self._offer_id = secrets.token_hex(8)
                await self._set_local_description(await pc.createOffer())
                offer = self._local_description_signal()
            # Send outside the lock: a relay that delivers synchronously may call our
            # handle_signal() with the answer before send_signal() returns.
            await self._send_signal(*offer)

    async def handle_signal(self, kind: str, data: dict | None) -> None:
        """Apply one message from the other side; raises ValueError for unknown kinds or bad data."""
        if kind not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal kind {kind!r}; expected one of {sorted(SIGNAL_KINDS)}")
        # Validate before the closed check so protocol errors surface consistently.
        if kind == "candidate":
            candidate = parse_ice_candidate(data)
        else:
            description = _description(kind, data if data is not None else {})
        if self._close_task is not None:
            return  # late message for a finished call
        if self._pc is None:
            raise RuntimeError("CallPeer.handle_signal() called before start()")

        # Serialise: a candidate must not be applied halfway through setRemoteDescription,
        # and two descriptions must not interleave.
        reply: tuple[str, dict] | None = None
        async with self._signal_lock:
            if self._close_task is not None:
                return
            if kind == "candidate":
                await self._add_candidate(candidate)
            elif kind == "offer":
                reply = await self._handle_offer(description, _offer_id(data))
            else:
                await self._handle_answer(description, _offer_id(data))
        if reply is not None:
            await self._send_signal(*reply)  # outside the lock, as in start()

    async def wait_for_frames(self, count: int, timeout: float) -> int:
        """Wait for ``count`` received frames and return ``frames_received``.

        Returns early (with fewer frames) if no more can arrive because the peer
        was closed or the remote track ended; raises ``asyncio.TimeoutError``
        if neither happens within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            async with self._frames_changed:
                await self._frames_changed.wait_for(
                    lambda: self.frames_received >= count
                    or self._close_task is not None
                    or self._remote_ended
                )
        return self.frames_received

    async def close(self) -> None:
        """Stop the local track, the receive loop and the peer connection; safe to call repeatedly."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        # Shield so a caller being cancelled does not abort teardown half-way.
        await asyncio.shield(self._close_task)

    # -- internals -------------------------------------------------------------

    async def _close(self) -> None:
        if self._local_track is not None:
            self._local_track.stop()
        if self._pc is not None:
            await self._pc.close()
        for task in list(self._remote_tasks):
            task.cancel()
        for task in list(self._remote_tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending_candidates.clear()
        await self._notify_frames()

    async def _set_local_description(self, description: RTCSessionDescription) -> None:
        assert self._pc is not None
        # aiortc gathers ICE candidates inside setLocalDescription(), so the host
        # restriction must be active exactly here.
        if self._host_addresses is None:
            await self._pc.setLocalDescription(description)
        else:
            with restrict_host_addresses(self._host_addresses):
                await self._pc.setLocalDescription(description)

    def _local_description_signal(self) -> tuple[str, dict]:
        assert self._pc is not None
        # localDescription, not the createOffer()/createAnswer() result: only the
        # former contains the gathered candidates (aiortc's substitute for trickling).
        local = self._pc.localDescription
        data = {"type": local.type, "sdp": local.sdp}
        offer_id = self._offer_id if local.type == "offer" else self._answered_offer_id
        if offer_id is not None:
            data[OFFER_ID] = offer_id
        return local.type, data

    async def _set_remote_description(self, description: RTCSessionDescription) -> None:
        assert self._pc is not None
        if self._host_addresses is not None:
            description = RTCSessionDescription(
                sdp=strip_mdns_candidates(description.sdp), type=description.type
            )
        await self._pc.setRemoteDescription(description)
        self._have_remote_description = True
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._pc.addIceCandidate(candidate)

    async def _handle_offer(
        self, description: RTCSessionDescription, offer_id: str | None
    ) -> tuple[str, dict] | None:
        """Apply a remote offer; return the answer signal to send, or None if ignored."""
        assert self._pc is not None
        if self._pc.signalingState == "have-local-offer":
            # Glare: both sides offered. Only the initiator offers in this protocol,
            # so keep ours (impolite peer) and let the other side process our offer.
            logger.warning("ignoring remote offer: local offer outstanding (glare)")
            return None
        await self._set_remote_description(description)
        self._answered_offer_id = offer_id
        await self._set_local_description(await self._pc.createAnswer())
        return self._local_description_signal()

    async def _handle_answer(self, description: RTCSessionDescription, offer_id: str | None) -> None:
        assert self._pc is not None
        if offer_id is not None and offer_id != self._offer_id:
            # The answer to an offer of an earlier peer (the call was rebuilt meanwhile):
            # applying it would point ICE/DTLS at a connection that no longer exists.
            logger.info("ignoring answer to offer %s (ours is %s)", offer_id, self._offer_id)
            return
        if self._pc.signalingState != "have-local-offer":
            logger.warning(
                "ignoring answer in signaling state %s (no offer outstanding)",
                self._pc.signalingState,
            )
            return
        await self._set_remote_description(description)

    async def _add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        assert self._pc is not None
        if candidate is None:
            # End-of-candidates: aioice keeps checking the pairs it has and
            # also learns peer-reflexive candidates, so nothing is lost by ignoring it.
            return
        if self._host_addresses is not None and is_mdns_address(candidate.ip):
            logger.info("ignoring mDNS candidate %s (host addresses restricted)", candidate.ip)
            return
        if not self._have_remote_description:
            # A browser may trickle candidates that overtake its offer in the relay;
            # aiortc would silently drop them, so hold them until the offer lands.
            self._pending_candidates.append(candidate)
            return
        await self._pc.addIceCandidate(candidate)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return  # audio is not part of the bot's job yet
        task = asyncio.ensure_future(self._consume(track))
        self._remote_tasks.add(task)
        task.add_done_callback(self._remote_tasks.discard)

    async def _on_connection_state_change(self) -> None:
        if self._pc is not None:
            logger.debug("connection state: %s", self._pc.connectionState)

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Pull decoded frames from a remote track until it ends, counting them."""
        try:
            while True:
                await track.recv()
                self.frames_received += 1
                if self.first_frame_at is None:
                    self.first_frame_at = self._clock()
                await self._notify_frames()
        except MediaStreamError:
            self._remote_ended = True
            await self._notify_frames()

    async def _notify_frames(self) -> None:
        async with self._frames_changed:
            self._frames_changed.notify_all()
