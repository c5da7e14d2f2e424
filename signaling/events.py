"""Payloads of the client-to-server events, validated once at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

from matching.policy import Mode
from matching.profile import Topics

MatchId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# An SDP is a few KB and a candidate far less; 64 KB leaves room and keeps the relay cheap.
MAX_SIGNAL_BYTES = 64 * 1024


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class QueueJoin(_Event):
    mode: Mode
    topics: Topics | None = None
    sessionId: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class QueueLeave(_Event):
    pass


class MatchRef(_Event):
    matchId: MatchId


class Signal(_Event):
    matchId: MatchId
    kind: Literal["offer", "answer", "candidate"]
    data: Any = None


class ChatSend(_Event):
    matchId: MatchId
    # Length is checked by the service: over the limit is `too_large`, not `invalid`.
    text: str


class ChatTyping(_Event):
    matchId: MatchId
    typing: StrictBool
