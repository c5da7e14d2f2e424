"""Activity rows (UserActivity): each status change starts a row; `lastSeen` ends or extends it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ActivityStatus, CallMode, UserActivity, new_id

async def current_row(session: AsyncSession, user_id: str) -> UserActivity | None:
    """The user's latest activity row."""
    query = (
        select(UserActivity)
        .where(UserActivity.user_id == user_id)
        .order_by(UserActivity.joined_at.desc(), UserActivity.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()

async def record_status(
    session: AsyncSession, user_id: str, status: ActivityStatus, now: datetime, mode: CallMode | None = None
) -> UserActivity:
    """Close the user's current row at `now` and start one for `status` (unless it is unchanged)."""
    current = await current_row(session, user_id)
    if current is not None:
        if current.status is status and current.mode is mode:
            current.last_seen = max(current.last_seen, now)
            return current
        if current.joined_at >= now:
            # A status that lasted no time at all: the new one replaces it (and rows keep a strict order).
            current.status, current.mode, current.last_seen = status, mode, now
            return current
        current.last_seen = max(current.last_seen, now)
    row = UserActivity(id=new_id(), user_id=user_id, status=status, mode=mode, joined_at=now, last_seen=now)
    session.add(row)
    await session.flush()
    return row

async def latest_rows(session: AsyncSession, user_ids: Iterable[str] | None = None) -> list[UserActivity]:
    """Each user's newest activity row (of `user_ids`, or of everyone)."""
    latest = select(func.max(UserActivity.joined_at).label("joined"), UserActivity.user_id.label("uid"))
    if user_ids is not None:
        latest = latest.where(UserActivity.user_id.in_(list(user_ids)))
    newest = latest.group_by(UserActivity.user_id).subquery()
    query = select(UserActivity).join(
        newest, (UserActivity.user_id == newest.c.uid) & (UserActivity.joined_at == newest.c.joined)
    )
    return list((await session.execute(query)).scalars())


async def heartbeat(session: AsyncSession, user_ids: Iterable[str], now: datetime) -> int:
    """Extend the newest row of each connected user to `now` (not an OFFLINE one); returns rows touched."""
    ids = list(user_ids)
    if not ids:
        return 0
    touched = 0
    for row in await latest_rows(session, ids):
        if row.status is not ActivityStatus.OFFLINE:
            row.last_seen = max(row.last_seen, now)
            touched += 1
    return touched


async def mark_all_offline(session: AsyncSession, now: datetime) -> int:
    """Close every user's open activity with an OFFLINE row (the server is stopping or starting)."""
    open_rows = [row for row in await latest_rows(session) if row.status is not ActivityStatus.OFFLINE]
    for row in open_rows:
        at = max(now, row.last_seen)
        session.add(UserActivity(id=new_id(), user_id=row.user_id, status=ActivityStatus.OFFLINE,
                                 joined_at=at, last_seen=at))
    return len(open_rows)
