"""Match records: what the lifecycle needs to read and write."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Match, MatchStatus

OPEN_STATUSES = (MatchStatus.PENDING, MatchStatus.ACTIVE)


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
        match.duration = call_duration(match.started_at, now)
    await session.flush()
    return len(matches)


def call_duration(started_at: datetime | None, ended_at: datetime) -> int | None:
    """Whole seconds from start to end; None if the call never started."""
    if started_at is None:
        return None
    return max(0, int((ended_at - started_at).total_seconds()))
