"""The store on SQLite and PostgreSQL: types, defaults, relations and the helpers the server uses."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from matching.identity import Role
from matching.store import users
from matching.store.database import session_factory
from matching.store.matches import close_open_matches
from matching.store.models import (
    Block,
    CallMode,
    ChatMessage,
    Flag,
    Match,
    MatchStatus,
    User,
    UserActivity,
    UserSession,
)
from matching.store.types import utcnow

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


async def _two_users(sessions):  # type: ignore[no-untyped-def]
    async with sessions.begin() as s:
        a = await users.create_user(s, display_name="A", topics=["rust", "go"], seniority="mid", now=T0)
        b = await users.create_user(s, display_name="B", is_guest=True, now=T0)
    return a, b


async def test_user_round_trip_keeps_lists_times_and_enums(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, _ = await _two_users(sessions)
    async with sessions() as s:
        got = await s.get(User, a.id)
    assert got is not None
    assert got.topics == ["rust", "go"]
    assert got.created_at == T0 and got.created_at.tzinfo is timezone.utc
    assert users.api_role(got.role) is Role.USER
    assert len(got.id) == 25


async def test_database_defaults_apply_without_the_orm(db) -> None:  # type: ignore[no-untyped-def]
    # Rows written by another client (a SQL console, a future service) get the documented defaults.
    async with db.engine.begin() as conn:
        await conn.execute(
            text('INSERT INTO "User" (id, "displayName", "updatedAt") VALUES (:id, :n, :t)'),
            {"id": "raw1", "n": "Raw", "t": datetime(2026, 1, 1)},
        )
    async with session_factory(db.engine)() as s:
        raw = await s.get(User, "raw1")
    assert raw is not None
    assert raw.topics == [] and raw.is_guest is False and raw.role.value == "USER"
    assert abs(raw.created_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


async def test_naive_datetimes_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="naive"):
        async with session_factory(db.engine).begin() as s:
            await users.create_user(s, display_name="N", now=datetime(2026, 1, 1))


async def test_ensure_user_is_idempotent_under_concurrency(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)

    async def ensure() -> str:
        async with sessions.begin() as s:
            user = await users.ensure_user(s, user_id="ext-1", role=Role.ADMIN, display_name="Ext", now=utcnow())
            return user.id

    ids = await asyncio.gather(*(ensure() for _ in range(8)))
    assert set(ids) == {"ext-1"}
    async with sessions() as s:
        count = len((await s.execute(select(User).where(User.id == "ext-1"))).scalars().all())
        user = await s.get(User, "ext-1")
    assert count == 1 and user is not None and users.api_role(user.role) is Role.ADMIN


def _match(a: str, b: str, **kw) -> Match:  # type: ignore[no-untyped-def]
    return Match(user1_id=a, user2_id=b, mode=CallMode.VIDEO, matched_at=T0, **kw)


async def test_close_open_matches_sets_end_time_and_duration(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    async with sessions.begin() as s:
        active = _match(a.id, b.id, status=MatchStatus.ACTIVE, started_at=T0 + timedelta(seconds=5), room_id="r1")
        pending = _match(a.id, b.id, room_id="r2")
        ended = _match(a.id, b.id, status=MatchStatus.SKIPPED, started_at=T0, ended_at=T0 + timedelta(seconds=9),
                       duration=9, room_id="r3")
        s.add_all([active, pending, ended])
    end = T0 + timedelta(seconds=65, milliseconds=900)
    async with sessions.begin() as s:
        assert await close_open_matches(s, now=end) == 2
    async with sessions() as s:
        rows = {m.room_id: m for m in (await s.execute(select(Match))).scalars()}
    assert (rows["r1"].status, rows["r1"].ended_at, rows["r1"].duration) == (MatchStatus.ENDED, end, 60)
    assert (rows["r2"].status, rows["r2"].ended_at, rows["r2"].duration) == (MatchStatus.ENDED, end, None)
    assert (rows["r3"].status, rows["r3"].duration) == (MatchStatus.SKIPPED, 9)
    assert rows["r1"].ended_by is None
    async with sessions.begin() as s:
        assert await close_open_matches(s, now=end) == 0


async def test_room_id_is_unique(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    async with sessions.begin() as s:
        s.add(_match(a.id, b.id, room_id="same"))
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(_match(b.id, a.id, room_id="same"))


async def test_relations_cascade_as_documented(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    async with sessions.begin() as s:
        match = _match(a.id, b.id, room_id="rc")
        s.add(match)
        await s.flush()
        s.add_all([
            UserActivity(user_id=b.id),
            UserSession(user_id=b.id, session_id="sess-b"),
            Block(blocker_id=a.id, blocked_id=b.id),
            ChatMessage(match_id=match.id, sender_id=b.id, text="hi"),
            Flag(flagged_by_id=a.id, flagged_user_id=b.id, match_id=match.id),
        ])
    # A user in a match cannot be deleted (Match -> User is RESTRICT), so the record of who met whom stays.
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await s.execute(User.__table__.delete().where(User.id == b.id))
    # Deleting the match: its chat goes with it, flags stay with matchId set to null.
    async with sessions.begin() as s:
        await s.execute(Match.__table__.delete().where(Match.id == match.id))
    async with sessions() as s:
        assert (await s.execute(select(ChatMessage))).scalars().all() == []
        flag = (await s.execute(select(Flag))).scalar_one()
        assert flag.match_id is None and flag.reason == "" and flag.status.value == "PENDING"
    # Blocks, sessions and activity rows belong to the user and go with it.
    async with sessions.begin() as s:
        await s.execute(Flag.__table__.delete())
        await s.execute(User.__table__.delete().where(User.id == b.id))
    async with sessions() as s:
        for model in (UserActivity, UserSession, Block):
            assert (await s.execute(select(model))).scalars().all() == []


async def test_chat_outlives_its_sender(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    async with sessions.begin() as s:
        c = await users.create_user(s, display_name="C", now=T0)
        match = _match(a.id, b.id, room_id="rx")
        s.add(match)
        await s.flush()
        s.add(ChatMessage(match_id=match.id, sender_id=c.id, text="still here"))
    async with sessions.begin() as s:
        await s.execute(User.__table__.delete().where(User.id == c.id))
    async with sessions() as s:
        message = (await s.execute(select(ChatMessage))).scalar_one()
    assert message.sender_id is None and message.text == "still here"


async def test_block_pair_is_unique(db) -> None:  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    async with sessions.begin() as s:
        s.add(Block(blocker_id=a.id, blocked_id=b.id))
    async with sessions.begin() as s:
        s.add(Block(blocker_id=b.id, blocked_id=a.id))  # the other direction is a different block
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(Block(blocker_id=a.id, blocked_id=b.id))


async def test_activity_rows_heartbeat_and_offline(db) -> None:  # type: ignore[no-untyped-def]
    from matching.store import activity
    from matching.store.models import ActivityStatus
    from matching.store.writer import BatchWriter

    sessions = session_factory(db.engine)
    a, b = await _two_users(sessions)
    writer = BatchWriter(sessions)
    recorder = activity.ActivityRecorder(sessions, writer)
    await recorder.record(a.id, ActivityStatus.ONLINE, T0)
    await recorder.record(b.id, ActivityStatus.ONLINE, T0)
    await recorder.record(b.id, ActivityStatus.OFFLINE, T0 + timedelta(seconds=5))
    # Only users still on the site are extended; an OFFLINE row keeps its end.
    assert await recorder.heartbeat([a.id, b.id], T0 + timedelta(seconds=30)) == 1
    await writer.close()
    async with sessions() as s:
        newest = {r.user_id: r for r in await activity.latest_rows(s)}
    assert newest[a.id].status is ActivityStatus.ONLINE and newest[a.id].last_seen == T0 + timedelta(seconds=30)
    assert newest[b.id].status is ActivityStatus.OFFLINE and newest[b.id].last_seen == T0 + timedelta(seconds=5)
    async with sessions.begin() as s:
        assert await activity.mark_all_offline(s, T0 + timedelta(seconds=40)) == 1
    async with sessions() as s:
        newest = {r.user_id: r for r in await activity.latest_rows(s)}
    assert newest[a.id].status is ActivityStatus.OFFLINE and newest[a.id].joined_at == T0 + timedelta(seconds=40)
