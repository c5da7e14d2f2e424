"""The life of a match, as pure transitions: found -> joined -> started -> ended.

PENDING (found, not both joined) -> ACTIVE (both joined) -> ENDED | SKIPPED; a PENDING match
that is not joined by both in time becomes TIMEOUT. A match is *open* while PENDING or ACTIVE.
Nothing here does I/O: the caller loads a `MatchState`, applies a transition, and stores the
result only if the record still is what it loaded (compare-and-set), so two processes or two
handlers can never both win a transition.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from .errors import Conflict, NotFound


class Status(str, enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"
    SKIPPED = "SKIPPED"
    TIMEOUT = "TIMEOUT"


OPEN = frozenset({Status.PENDING, Status.ACTIVE})


@dataclass(frozen=True, slots=True)
class MatchState:
    """What the lifecycle needs of a match record."""

    id: str
    user1_id: str
    user2_id: str
    mode: str
    status: Status
    matched_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    ended_by: str | None = None
    user1_joined_at: datetime | None = None
    user2_joined_at: datetime | None = None
    room_id: str | None = None
    matched_topics: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def has(self, user_id: str) -> bool:
        """True when `user_id` is one of the two people of this match."""
        return user_id in (self.user1_id, self.user2_id)

    def partner_of(self, user_id: str) -> str:
        """The other person of the match; `not_found` for someone who is not in it."""
        if user_id == self.user1_id:
            return self.user2_id
        if user_id == self.user2_id:
            return self.user1_id
        raise NotFound(f"you are not in match {self.id}")


def duration_seconds(started_at: datetime | None, ended_at: datetime) -> int | None:
    """Whole seconds of call time; None when the call never started."""
    if started_at is None:
        return None
    return max(0, int((ended_at - started_at).total_seconds()))


def require_open(state: MatchState, user_id: str) -> str:
    """The partner of `user_id` in an open match, or the refusal the contract asks for."""
    partner = state.partner_of(user_id)
    if not state.is_open:
        raise Conflict(f"match {state.id} has ended ({state.status.value})", matchId=state.id)
    return partner


def join(state: MatchState, user_id: str, now: datetime) -> tuple[MatchState, bool]:
    """Record `user_id`'s join; returns the new state and whether this join started the call.

    Joining twice is harmless: the first join time stays.
    """
    require_open(state, user_id)
    if user_id == state.user1_id and state.user1_joined_at is None:
        state = replace(state, user1_joined_at=now)
    elif user_id == state.user2_id and state.user2_joined_at is None:
        state = replace(state, user2_joined_at=now)
    if state.status is Status.PENDING and state.user1_joined_at and state.user2_joined_at:
        return replace(state, status=Status.ACTIVE, started_at=now), True
    return state, False


def end(state: MatchState, *, status: Status, ended_by: str | None, now: datetime) -> MatchState:
    """Close an open match as ENDED, SKIPPED or TIMEOUT; `conflict` if it is already closed."""
    if status in OPEN:
        raise ValueError(f"{status} does not close a match")
    if not state.is_open:
        raise Conflict(f"match {state.id} has already ended ({state.status.value})", matchId=state.id)
    if status is Status.TIMEOUT and state.status is not Status.PENDING:
        raise Conflict(f"match {state.id} has started; it cannot time out", matchId=state.id)
    return replace(
        state,
        status=status,
        ended_at=now,
        ended_by=ended_by,
        duration=duration_seconds(state.started_at, now),
    )
