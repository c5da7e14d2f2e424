"""Flags, their audit trail, and blocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Block, Flag, FlagAudit, FlagStatus, Match, User, new_id


async def add_flag(
    session: AsyncSession, *, flagged_by: str, flagged_user: str, match_id: str | None, reason: str,
    category: Any, now: datetime,
) -> Flag:
    """Insert a PENDING flag raised at `now`, with its first audit entry."""
    flag = Flag(
        id=new_id(), flagged_by_id=flagged_by, flagged_user_id=flagged_user, match_id=match_id, reason=reason,
        category=category, flagged_at=now, status=FlagStatus.PENDING, created_at=now, updated_at=now,
    )
    session.add(flag)
    await session.flush()
    await add_audit(session, flag.id, flagged_by, "create", {
        "flaggedUserId": flagged_user, "matchId": match_id, "reason": reason,
        "category": category.value if category else None,
    }, now)
    return flag


async def add_audit(session: AsyncSession, flag_id: str, actor_id: str, action: str, changes: dict[str, Any],
                    now: datetime) -> None:
    """Record who changed what on a flag, and when."""
    session.add(FlagAudit(id=new_id(), flag_id=flag_id, actor_id=actor_id, action=action, changes=changes,
                          created_at=now))


async def get_flag(session: AsyncSession, flag_id: str, *, for_update: bool = False) -> Flag | None:
    """The flag, or None."""
    query = select(Flag).where(Flag.id == flag_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def audit_trail(session: AsyncSession, flag_id: str) -> list[FlagAudit]:
    """A flag's changes, oldest first."""
    query = select(FlagAudit).where(FlagAudit.flag_id == flag_id).order_by(FlagAudit.created_at, FlagAudit.id)
    return list((await session.execute(query)).scalars())


async def flags_since(session: AsyncSession, user_id: str, since: datetime) -> list[datetime]:
    """When `user_id` raised flags at or after `since`, oldest first (for the hourly limit)."""
    query = (
        select(Flag.flagged_at)
        .where(Flag.flagged_by_id == user_id, Flag.flagged_at >= since)
        .order_by(Flag.flagged_at)
    )
    return list((await session.execute(query)).scalars())


async def list_flags(
    session: AsyncSession, *, user_id: str | None, match_id: str | None, status: FlagStatus | None,
    limit: int, offset: int,
) -> tuple[list[tuple[Flag, str | None, str | None]], int]:
    """Flags (newest first) with both users' display names, and the total that match the filters."""
    conditions = []
    if user_id is not None:
        conditions.append(or_(Flag.flagged_by_id == user_id, Flag.flagged_user_id == user_id))
    if match_id is not None:
        conditions.append(Flag.match_id == match_id)
    if status is not None:
        conditions.append(Flag.status == status)
    total = (await session.execute(select(func.count()).select_from(Flag).where(*conditions))).scalar_one()
    by = User.__table__.alias("by_user")
    against = User.__table__.alias("against_user")
    query = (
        select(Flag, by.c.displayName, against.c.displayName)
        .join(by, by.c.id == Flag.flagged_by_id)
        .join(against, against.c.id == Flag.flagged_user_id)
        .where(*conditions)
        .order_by(Flag.flagged_at.desc(), Flag.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [(flag, by_name, against_name) for flag, by_name, against_name in (await session.execute(query)).all()]
    return rows, total


async def were_matched(session: AsyncSession, a: str, b: str) -> bool:
    """True when `a` and `b` have ever been in a match together."""
    query = select(Match.id).where(
        or_((Match.user1_id == a) & (Match.user2_id == b), (Match.user1_id == b) & (Match.user2_id == a))
    ).limit(1)
    return (await session.execute(query)).first() is not None


async def add_block(session: AsyncSession, blocker: str, blocked: str, now: datetime) -> tuple[Block, bool]:
    """Block `blocked` for `blocker`; (block, created) — blocking twice keeps the first."""
    existing = (
        await session.execute(select(Block).where(Block.blocker_id == blocker, Block.blocked_id == blocked))
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    block = Block(id=new_id(), blocker_id=blocker, blocked_id=blocked, created_at=now)
    session.add(block)
    await session.flush()
    return block, True


async def remove_block(session: AsyncSession, blocker: str, blocked: str) -> bool:
    """Lift a block; False if there was none."""
    block = (
        await session.execute(select(Block).where(Block.blocker_id == blocker, Block.blocked_id == blocked))
    ).scalar_one_or_none()
    if block is None:
        return False
    await session.delete(block)
    return True


async def blocks_of(session: AsyncSession, blocker: str) -> list[Block]:
    """Whom `blocker` has blocked, newest first."""
    query = select(Block).where(Block.blocker_id == blocker).order_by(Block.created_at.desc(), Block.id)
    return list((await session.execute(query)).scalars())
