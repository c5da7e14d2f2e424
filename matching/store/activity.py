"""Activity rows (UserActivity): each status change starts a row; `lastSeen` ends or extends it."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import ActivityStatus, CallMode, UserActivity, new_id
from .writer import INSERT, UPDATE, BatchWriter, Write, update_where

_TABLE = UserActivity.__table__
_INSERT_ROW = insert(_TABLE)
_UPDATE_ROW = update_where(
    _TABLE, "id", "row_id", {"status": "new_status", "mode": "new_mode", "lastSeen": "new_last_seen"}
)


@dataclass(slots=True)
class _Row:
    id: str
    status: ActivityStatus
    mode: CallMode | None
    joined_at: datetime
    last_seen: datetime

    def update(self) -> Write:
        return Write(_UPDATE_ROW, {"row_id": self.id, "new_status": self.status, "new_mode": self.mode,
                                   "new_last_seen": self.last_seen}, rank=UPDATE)


class ActivityRecorder:
    """Each user's current activity row, kept in memory; the rows go to the store through the writer.

    Deciding a status change needs the user's current row. Reading it each time cost three
    statements a change; now it is read once (the first change after the server starts, or
    after the user went OFFLINE) and the writes go out with the next batch. This process is
    the only writer of a connected user's rows. At most `kept` users are held (the least
    recently changed go first); one dropped is read again.
    """

    def __init__(self, db: async_sessionmaker[AsyncSession], writer: BatchWriter, *, kept: int = 100_000) -> None:
        self._db = db
        self._writer = writer
        self._kept = max(1, kept)
        self._rows: OrderedDict[str, _Row | None] = OrderedDict()  # None: the user has no row yet

    async def _current(self, user_id: str) -> _Row | None:
        while user_id not in self._rows:  # read again should it be dropped while being read
            await self._load([user_id])
        self._rows.move_to_end(user_id)
        return self._rows[user_id]

    async def record(self, user_id: str, status: ActivityStatus, now: datetime, mode: CallMode | None = None) -> None:
        """Close the user's current row at `now` and start one for `status` (unless it is unchanged)."""
        current = await self._current(user_id)
        if current is not None:
            if current.status is status and current.mode is mode:
                current.last_seen = max(current.last_seen, now)
                self._writer.later(current.update())
                return
            if current.joined_at >= now:
                # A status that lasted no time at all: the new one replaces it (rows keep a strict order).
                current.status, current.mode, current.last_seen = status, mode, now
                self._writer.later(current.update())
                return
            current.last_seen = max(current.last_seen, now)
            closing = current.update()
        else:
            closing = None
        row = _Row(new_id(), status, mode, now, now)
        self._rows[user_id] = row
        inserted = Write(_INSERT_ROW, {"id": row.id, "userId": user_id, "status": status, "mode": mode,
                                      "joinedAt": now, "lastSeen": now}, rank=INSERT)
        self._writer.later(*(w for w in (closing, inserted) if w is not None))
        if status is ActivityStatus.OFFLINE:
            # Gone: the next change reads the row again; memory holds only people still around.
            del self._rows[user_id]

    async def status(self, user_id: str) -> ActivityStatus | None:
        """The status of the user's current row, None before their first."""
        current = await self._current(user_id)
        return None if current is None else current.status

    async def heartbeat(self, user_ids: Iterable[str], now: datetime) -> int:
        """Extend the current row of each user to `now` (not an OFFLINE one); returns rows touched."""
        ids = list(user_ids)
        await self._load(ids)
        touched = [row for uid in ids if (row := self._rows.get(uid)) and row.status is not ActivityStatus.OFFLINE]
        for row in touched:
            row.last_seen = max(row.last_seen, now)
        self._writer.later(*(row.update() for row in touched))
        return len(touched)

    async def _load(self, user_ids: list[str]) -> None:
        """Read the current row of those of `user_ids` not in memory; none of `user_ids` is dropped for it."""
        missing = [uid for uid in dict.fromkeys(user_ids) if uid not in self._rows]
        if not missing:
            return
        # Earlier writes of these users may still be on their way: read after them.
        await self._writer.flush()
        async with self._db() as s:
            rows = await latest_rows(s, missing)
        newest: dict[str, UserActivity] = {}
        for row in rows:
            seen = newest.get(row.user_id)
            if seen is None or row.id > seen.id:
                newest[row.user_id] = row
        fresh = [uid for uid in missing if uid not in self._rows]  # another read may have filled some
        excess = len(self._rows) + len(fresh) - self._kept
        if excess > 0:
            # The least recently changed go, never one of those asked for.
            wanted = set(user_ids)
            victims = list(itertools.islice((uid for uid in self._rows if uid not in wanted), excess))
            for uid in victims:
                del self._rows[uid]
        for user_id in fresh:
            row = newest.get(user_id)
            self._rows[user_id] = None if row is None else _Row(row.id, row.status, row.mode, row.joined_at, row.last_seen)


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


async def mark_all_offline(session: AsyncSession, now: datetime) -> int:
    """Close every user's open activity with an OFFLINE row (the server is stopping or starting)."""
    open_rows = [row for row in await latest_rows(session) if row.status is not ActivityStatus.OFFLINE]
    for row in open_rows:
        at = max(now, row.last_seen)
        session.add(UserActivity(id=new_id(), user_id=row.user_id, status=ActivityStatus.OFFLINE,
                                 joined_at=at, last_seen=at))
    return len(open_rows)
