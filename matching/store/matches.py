"""Match records: what the lifecycle needs to read and write."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from matching.lifecycle import OPEN, MatchState, duration_seconds

from .models import CallMode, Match, MatchStatus
from .writer import INSERT, Write, typed_param

_MATCHES = Match.__table__
_INSERT_MATCH = insert(_MATCHES)

OPEN_STATUSES = tuple(OPEN)


def to_state(row: Match) -> MatchState:
    """The lifecycle's view of a stored match."""
    return MatchState(
        id=row.id,
        user1_id=row.user1_id,
        user2_id=row.user2_id,
        mode=row.mode.value,
        status=row.status,
        matched_at=row.matched_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration=row.duration,
        ended_by=row.ended_by,
        user1_joined_at=row.user1_joined_at,
        user2_joined_at=row.user2_joined_at,
        room_id=row.room_id,
        matched_topics=tuple(row.matched_topics),
    )


def new_match(
    *,
    match_id: str,
    user1_id: str,
    user2_id: str,
    user1_session_id: str | None,
    user2_session_id: str | None,
    mode: CallMode,
    matched_topics: list[str],
    room_id: str,
    now: datetime,
) -> tuple[MatchState, Write]:
    """A PENDING match found at `now`, and the write that stores it (for a `BatchWriter`)."""
    state = MatchState(
        id=match_id, user1_id=user1_id, user2_id=user2_id, mode=mode.value, status=MatchStatus.PENDING,
        matched_at=now, started_at=None, ended_at=None, duration=None, ended_by=None,
        user1_joined_at=None, user2_joined_at=None, room_id=room_id, matched_topics=tuple(matched_topics),
    )
    values = {
        "id": match_id, "user1Id": user1_id, "user2Id": user2_id, "user1SessionId": user1_session_id,
        "user2SessionId": user2_session_id, "mode": mode, "status": MatchStatus.PENDING, "matchedAt": now,
        "roomId": room_id, "matchedTopics": list(matched_topics), "createdAt": now, "updatedAt": now,
    }
    return state, Write(_INSERT_MATCH, values, rank=INSERT)


async def load(session: AsyncSession, match_id: str) -> MatchState | None:
    """The match with `match_id`, or None."""
    row = await session.get(Match, match_id, populate_existing=True)
    return None if row is None else to_state(row)


async def open_match_for(session: AsyncSession, user_id: str) -> MatchState | None:
    """The user's open (PENDING or ACTIVE) match, newest first, or None."""
    query = (
        select(Match)
        .where(or_(Match.user1_id == user_id, Match.user2_id == user_id), Match.status.in_(OPEN_STATUSES))
        .order_by(Match.matched_at.desc())
        .limit(1)
    )
    row = (await session.execute(query)).scalar_one_or_none()
    return None if row is None else to_state(row)


# Built once: a statement built per call cost more CPU than the rest of a match:join.
# `IS NOT DISTINCT FROM` (`IS` on SQLite) compares NULL with NULL as equal.
_TRANSITION = (
    update(_MATCHES)
    .where(
        _MATCHES.c.id == bindparam("b_id"),
        _MATCHES.c.status == typed_param(_MATCHES, "b_status", "status"),
        _MATCHES.c.user1JoinedAt.is_not_distinct_from(typed_param(_MATCHES, "b_joined1", "user1JoinedAt")),
        _MATCHES.c.user2JoinedAt.is_not_distinct_from(typed_param(_MATCHES, "b_joined2", "user2JoinedAt")),
    )
    .values(
        {column: typed_param(_MATCHES, f"n_{column}", column) for column in (
            "status", "startedAt", "endedAt", "duration", "endedBy", "user1JoinedAt", "user2JoinedAt", "updatedAt"
        )}
    )
)


def transition(before: MatchState, after: MatchState, now: datetime) -> Write:
    """The compare-and-set of a lifecycle transition, for a `BatchWriter`: it must change one row."""
    params = {
        "b_id": before.id, "b_status": before.status, "b_joined1": before.user1_joined_at,
        "b_joined2": before.user2_joined_at, "n_status": after.status, "n_startedAt": after.started_at,
        "n_endedAt": after.ended_at, "n_duration": after.duration, "n_endedBy": after.ended_by,
        "n_user1JoinedAt": after.user1_joined_at, "n_user2JoinedAt": after.user2_joined_at, "n_updatedAt": now,
    }
    return Write(_TRANSITION, params, rows=1)


async def close_open_matches(session: AsyncSession, *, now: datetime) -> int:
    """End every PENDING or ACTIVE match at `now` (the server is stopping or starting); returns how many.

    A call that had started gets its duration; one that never started gets none. `endedBy`
    stays null: the server, not a user, ended it.
    """
    matches = (await session.execute(select(Match).where(Match.status.in_(OPEN_STATUSES)))).scalars().all()
    for match in matches:
        match.status = MatchStatus.ENDED
        match.ended_at = now
        match.updated_at = now
        match.duration = duration_seconds(match.started_at, now)
    await session.flush()
    return len(matches)
