"""Matching sessions (UserSession): who a user has met since they pressed Start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Block, Flag, UserSession, new_id
from .writer import PARENT, UPDATE, Write, update_where

_TABLE = UserSession.__table__
_INSERT = insert(_TABLE)
_SET_MET = update_where(_TABLE, "sessionId", "session_key", {"matchedUserIds": "met", "updatedAt": "at"})


async def active_session(session: AsyncSession, user_id: str) -> UserSession | None:
    """The user's active session, if any (the newest, should there ever be two)."""
    query = (
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.is_active.is_(True))
        .order_by(UserSession.started_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def by_session_id(session: AsyncSession, session_id: str) -> UserSession | None:
    """The session with this sessionId, or None."""
    query = select(UserSession).where(UserSession.session_id == session_id)
    return (await session.execute(query)).scalar_one_or_none()


async def start_session(session: AsyncSession, user_id: str, now: datetime) -> UserSession:
    """Start a new session, ending any active one first: one active session a user."""
    await end_sessions(session, user_id, now)
    row = UserSession(
        id=new_id(), user_id=user_id, session_id=new_id(), started_at=now, is_active=True,
        matched_user_ids=[], created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def end_sessions(session: AsyncSession, user_id: str, now: datetime, session_id: str | None = None) -> int:
    """End the user's active session(s) (only `session_id` when given); returns how many ended."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.is_active.is_(True))
    if session_id is not None:
        query = query.where(UserSession.session_id == session_id)
    result = await session.execute(
        query.values(is_active=False, ended_at=now, updated_at=now).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def new_session(user_id: str, now: datetime) -> tuple[str, Write]:
    """A new active session's sessionId and the write that stores it (when the user has no active one)."""
    session_id = new_id()
    values = {"id": new_id(), "userId": user_id, "sessionId": session_id, "startedAt": now, "isActive": True,
              "matchedUserIds": [], "createdAt": now, "updatedAt": now}
    return session_id, Write(_INSERT, values, rank=PARENT)


def set_met(session_id: str, met: list[str], now: datetime) -> Write:
    """The write that stores a session's whole matchedUserIds (its owner keeps the list; one process a user)."""
    return Write(_SET_MET, {"session_key": session_id, "met": met, "at": now}, rank=UPDATE)


async def excluded_user_ids(session: AsyncSession, user_id: str) -> set[str]:
    """Everyone this user must never meet: blocked or flagged, in either direction."""
    blocks = await session.execute(
        select(Block.blocker_id, Block.blocked_id).where(or_(Block.blocker_id == user_id, Block.blocked_id == user_id))
    )
    flags = await session.execute(
        select(Flag.flagged_by_id, Flag.flagged_user_id).where(
            or_(Flag.flagged_by_id == user_id, Flag.flagged_user_id == user_id)
        )
    )
    others = {a if b == user_id else b for a, b in [*blocks.all(), *flags.all()]}
    others.discard(user_id)
    return others


async def history(session: AsyncSession, user_id: str, *, limit: int, offset: int) -> tuple[list[UserSession], int]:
    """The user's sessions, newest first, and how many there are in all."""
    total = (await session.execute(select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id))).scalar_one()
    rows = (
        await session.execute(
            select(UserSession)
            .where(UserSession.user_id == user_id)
            .order_by(UserSession.started_at.desc(), UserSession.id)
            .limit(limit)
            .offset(offset)
        )
    ).scalars().all()
    return list(rows), total
