"""Match records: what the lifecycle needs to read and write."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from matching.lifecycle import OPEN, MatchState, duration_seconds

from .models import CallMode, Match, MatchStatus

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


async def create_match(
    session: AsyncSession,
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
) -> MatchState:
    """Insert a PENDING match found at `now`."""
    row = Match(
        id=match_id, user1_id=user1_id, user2_id=user2_id, user1_session_id=user1_session_id,
        user2_session_id=user2_session_id, mode=mode, status=MatchStatus.PENDING, matched_at=now,
        room_id=room_id, matched_topics=matched_topics, created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    return to_state(row)


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


async def compare_and_set(session: AsyncSession, before: MatchState, after: MatchState, now: datetime) -> bool:
    """Store `after` only if the record still is `before` in every field a transition changes."""
    query = (
        update(Match)
        .where(
            Match.id == before.id,
            Match.status == before.status,
            _same(Match.user1_joined_at, before.user1_joined_at),
            _same(Match.user2_joined_at, before.user2_joined_at),
        )
        .values(
            status=after.status,
            started_at=after.started_at,
            ended_at=after.ended_at,
            duration=after.duration,
            ended_by=after.ended_by,
            user1_joined_at=after.user1_joined_at,
            user2_joined_at=after.user2_joined_at,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(query)
    return result.rowcount == 1


def _same(column, value):  # type: ignore[no-untyped-def]
    return column.is_(None) if value is None else column == value


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
