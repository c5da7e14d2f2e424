"""Read-only questions over activity rows and matches: who is online, who was when, match history.

Everything here works on SQLite and PostgreSQL alike: every value is a bound parameter, and
time buckets are either counted in Python (activity, which needs "the user's row at T") or
grouped in SQL on an integer millisecond index computed per dialect (matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, cast, exists, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from matching.errors import Invalid

from .models import ActivityStatus, CallMode, Match, MatchStatus, User, UserActivity

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_BUCKET_SECONDS = 3600
MIN_BUCKET_SECONDS = 60
MAX_BUCKET_SECONDS = 86_400
MAX_BUCKETS = 1000

OPEN_MATCH = (MatchStatus.PENDING, MatchStatus.ACTIVE)
CLOSED_MATCH = (MatchStatus.ENDED, MatchStatus.SKIPPED, MatchStatus.TIMEOUT)
BUSY = (ActivityStatus.SEARCHING, ActivityStatus.IN_CALL)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---------------------------------------------------------------------- times and windows


def parse_time(value: object) -> datetime:
    """An ISO 8601 time with a timezone, as aware UTC to the millisecond; ValueError otherwise."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO 8601 time such as 2024-01-15T10:00:00Z") from None
    else:
        raise ValueError("must be an ISO 8601 time string")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must carry a timezone (Z or +hh:mm)")
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range") from None
    # The store keeps milliseconds: bounds finer than that would not line up with stored times.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Window:
    """A time range cut into buckets of `step` seconds; bucket k starts at start + k * step."""

    start: datetime
    end: datetime
    step: int

    @property
    def count(self) -> int:
        """How many buckets: those starting in [start, end), and at least one (start == end asks about one instant)."""
        span = self.end - self.start
        size = timedelta(seconds=self.step)
        return max(1, -(-span // size))

    def starts(self) -> list[datetime]:
        """The start of every bucket, oldest first."""
        size = timedelta(seconds=self.step)
        return [self.start + k * size for k in range(self.count)]


def window(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    step: int = DEFAULT_BUCKET_SECONDS,
    span: timedelta = DEFAULT_SPAN,
) -> Window:
    """The range asked for (end defaults to `now`, start to `span` before end), or `invalid`."""
    if end is None:
        end = now
    if start is None:
        try:
            start = end - span
        except OverflowError:
            raise Invalid(f"endTime is too early for the default range of {span}") from None
    if start > end:
        raise Invalid("startTime is after endTime")
    if not MIN_BUCKET_SECONDS <= step <= MAX_BUCKET_SECONDS:
        raise Invalid(f"bucket must be {MIN_BUCKET_SECONDS} to {MAX_BUCKET_SECONDS} seconds")
    result = Window(start, end, step)
    if result.count > MAX_BUCKETS:
        raise Invalid(f"the range holds {result.count} buckets of {step} s; at most {MAX_BUCKETS} are allowed")
    return result


# ---------------------------------------------------------------------- activity


@dataclass(frozen=True, slots=True)
class ActivityNow:
    """Users online right now, by status, and the call mode of those searching or in a call."""

    online: int
    searching: int
    in_call: int
    video: int
    text: int


@dataclass(frozen=True, slots=True)
class ActivityPoint:
    """How many users were in each state at `at`."""

    at: datetime
    online: int
    searching: int
    in_call: int


def _is_latest(row: Any) -> ColumnElement[bool]:
    # No later row of the same user (ties broken by id, like activity.current_row).
    later = aliased(UserActivity)
    return ~exists().where(
        later.user_id == row.user_id,
        or_(later.joined_at > row.joined_at, and_(later.joined_at == row.joined_at, later.id > row.id)),
    )


async def activity_now(session: AsyncSession, *, fresh_since: datetime) -> ActivityNow:
    """Users whose latest row is not OFFLINE and was seen at or after `fresh_since`."""
    query = (
        select(UserActivity.status, UserActivity.mode, func.count(func.distinct(UserActivity.user_id)))
        .where(
            UserActivity.last_seen >= fresh_since,
            UserActivity.status != ActivityStatus.OFFLINE,
            _is_latest(UserActivity),
        )
        .group_by(UserActivity.status, UserActivity.mode)
    )
    online = searching = in_call = video = text = 0
    for status, mode, count in (await session.execute(query)).all():
        online += count
        if status is ActivityStatus.SEARCHING:
            searching += count
        elif status is ActivityStatus.IN_CALL:
            in_call += count
        if status in BUSY:
            if mode is CallMode.VIDEO:
                video += count
            elif mode is CallMode.TEXT:
                text += count
    return ActivityNow(online, searching, in_call, video, text)


async def activity_timeline(session: AsyncSession, span: Window) -> list[ActivityPoint]:
    """For each bucket start T: users by their status at T (the newest row with joinedAt <= T <= lastSeen)."""
    starts = span.starts()
    last = starts[-1]
    query = select(
        UserActivity.user_id, UserActivity.id, UserActivity.status, UserActivity.joined_at, UserActivity.last_seen
    ).where(UserActivity.joined_at <= last, UserActivity.last_seen >= span.start)
    size = timedelta(seconds=span.step)
    # bucket -> user -> (joinedAt, id, status) of the newest row covering that bucket's start.
    at: list[dict[str, tuple[datetime, str, ActivityStatus]]] = [{} for _ in starts]
    for user_id, row_id, status, joined_at, last_seen in (await session.execute(query)).all():
        first = max(0, -(-(joined_at - span.start) // size))
        final = min(len(starts) - 1, (last_seen - span.start) // size)
        for k in range(first, final + 1):
            seen = at[k].get(user_id)
            if seen is None or (joined_at, row_id) > seen[:2]:
                at[k][user_id] = (joined_at, row_id, status)
    points = []
    for moment, users in zip(starts, at, strict=True):
        statuses = [status for _, _, status in users.values()]
        points.append(
            ActivityPoint(
                at=moment,
                online=sum(1 for s in statuses if s is not ActivityStatus.OFFLINE),
                searching=statuses.count(ActivityStatus.SEARCHING),
                in_call=statuses.count(ActivityStatus.IN_CALL),
            )
        )
    return points


# ---------------------------------------------------------------------- matches


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A match with the display names of its two people."""

    match: Match
    user1_name: str
    user2_name: str


@dataclass(frozen=True, slots=True)
class MatchPage:
    """One page of matches, how many match in all, and the matchedAt span of all of them."""

    rows: list[MatchRow]
    total: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, slots=True)
class MatchStats:
    total: int
    open: int
    closed: int
    average_duration: float
    by_mode: dict[str, int]
    by_bucket: list[tuple[datetime, int]]


def _match_filters(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    status: MatchStatus | None = None,
    active_at: datetime | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if user_id is not None:
        where.append(or_(Match.user1_id == user_id, Match.user2_id == user_id))
    if session_id is not None:
        where.append(or_(Match.user1_session_id == session_id, Match.user2_session_id == session_id))
    if start is not None:
        where.append(Match.matched_at >= start)
    if end is not None:
        where.append(Match.matched_at <= end)
    if status is not None:
        where.append(Match.status == status)
    if active_at is not None:
        # The seed's "matches active at a specific time": the call had started and not yet ended.
        where.append(Match.started_at <= active_at)
        where.append(or_(Match.ended_at.is_(None), Match.ended_at >= active_at))
    return where


def _with_names() -> Any:
    u1, u2 = aliased(User), aliased(User)
    return (
        select(Match, u1.display_name, u2.display_name)
        .join(u1, u1.id == Match.user1_id)
        .join(u2, u2.id == Match.user2_id)
    )


async def list_matches(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    status: MatchStatus | None = None,
    active_at: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> MatchPage:
    """Matches newest first; `user_id` keeps those the user was in (as user1 or user2)."""
    where = _match_filters(
        user_id=user_id, session_id=session_id, start=start, end=end, status=status, active_at=active_at
    )
    page = (
        _with_names().where(*where).order_by(Match.matched_at.desc(), Match.id.desc()).limit(limit).offset(offset)
    )
    rows = [MatchRow(m, n1, n2) for m, n1, n2 in (await session.execute(page)).all()]
    summary = select(func.count(Match.id), func.min(Match.matched_at), func.max(Match.matched_at)).where(*where)
    total, first, last = (await session.execute(summary)).one()
    return MatchPage(rows, total, first, last)


async def get_match(session: AsyncSession, match_id: str) -> MatchRow | None:
    """One match with both names, or None."""
    found = (await session.execute(_with_names().where(Match.id == match_id))).one_or_none()
    return None if found is None else MatchRow(*found)


def _epoch_millis(session: AsyncSession, column: Any) -> ColumnElement[int]:
    # Whole milliseconds since 1970 of a stored UTC time, exactly, as an integer on each database.
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        return cast(func.round(extract("epoch", column) * 1000), BigInteger)
    if dialect == "sqlite":
        seconds = cast(func.strftime("%s", column), Integer)
        millis = cast(func.substr(func.strftime("%f", column), 4), Integer)
        return seconds * 1000 + millis
    raise NotImplementedError(f"no epoch expression for {dialect}")


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


async def match_stats(session: AsyncSession, span: Window, *, user_id: str | None = None) -> MatchStats:
    """Counts, mean duration, modes and matches per bucket over matches found in [start, end]."""
    where = _match_filters(user_id=user_id, start=span.start, end=span.end)
    grouped = (
        select(Match.mode, Match.status, func.count(Match.id), func.sum(Match.duration), func.count(Match.duration))
        .where(*where)
        .group_by(Match.mode, Match.status)
    )
    total = open_ = closed = durations = timed = 0
    by_mode = {mode.value: 0 for mode in CallMode}
    for mode, status, count, duration_sum, duration_count in (await session.execute(grouped)).all():
        total += count
        by_mode[mode.value] += count
        if status in OPEN_MATCH:
            open_ += count
        elif status in CLOSED_MATCH:
            closed += count
        durations += int(duration_sum or 0)
        timed += duration_count
    average = round(durations / timed, 1) if timed else 0.0

    bucket = ((_epoch_millis(session, Match.matched_at) - _millis(span.start)) // (span.step * 1000)).label("bucket")
    inner = select(bucket).where(*where).subquery()
    per_bucket = select(inner.c.bucket, func.count()).group_by(inner.c.bucket)
    counts = [0] * span.count
    for index, count in (await session.execute(per_bucket)).all():
        # A match at exactly `end` falls past the last bucket start: it belongs to the last bucket.
        counts[min(int(index), span.count - 1)] += count
    return MatchStats(
        total=total,
        open=open_,
        closed=closed,
        average_duration=average,
        by_mode=by_mode,
        by_bucket=list(zip(span.starts(), counts, strict=True)),
    )
