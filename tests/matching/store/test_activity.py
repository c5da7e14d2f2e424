"""The activity recorder: each status change a row, decided in memory, stored through the batch writer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from matching.store import users
from matching.store.activity import ActivityRecorder
from matching.store.database import session_factory
from matching.store.models import ActivityStatus, CallMode, UserActivity
from matching.store.writer import BatchWriter

T0 = datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
S = timedelta(seconds=1)


async def _rows(sessions, user_id: str) -> list[tuple[str, str | None, datetime, datetime]]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        rows = (await s.execute(select(UserActivity).where(UserActivity.user_id == user_id)
                                .order_by(UserActivity.joined_at))).scalars().all()
    return [(r.status.value, r.mode.value if r.mode else None, r.joined_at, r.last_seen) for r in rows]


async def _setup(db):  # type: ignore[no-untyped-def]
    sessions = session_factory(db.engine)
    async with sessions.begin() as s:
        ann = await users.create_user(s, display_name="Ann", now=T0)
    writer = BatchWriter(sessions)
    return sessions, writer, ActivityRecorder(sessions, writer), ann.id


async def test_each_change_closes_the_row_before_and_starts_one(db) -> None:  # type: ignore[no-untyped-def]
    sessions, writer, recorder, ann = await _setup(db)
    await recorder.record(ann, ActivityStatus.ONLINE, T0)
    await recorder.record(ann, ActivityStatus.SEARCHING, T0 + 2 * S, CallMode.VIDEO)
    await recorder.record(ann, ActivityStatus.SEARCHING, T0 + 3 * S, CallMode.VIDEO)  # the same: extends
    await recorder.record(ann, ActivityStatus.IN_CALL, T0 + 5 * S, CallMode.VIDEO)
    await writer.flush()
    assert await _rows(sessions, ann) == [
        ("ONLINE", None, T0, T0 + 2 * S),
        ("SEARCHING", "VIDEO", T0 + 2 * S, T0 + 5 * S),
        ("IN_CALL", "VIDEO", T0 + 5 * S, T0 + 5 * S),
    ]
    await writer.close()


async def test_a_status_that_lasted_no_time_is_replaced(db) -> None:  # type: ignore[no-untyped-def]
    sessions, writer, recorder, ann = await _setup(db)
    await recorder.record(ann, ActivityStatus.ONLINE, T0)
    await recorder.record(ann, ActivityStatus.SEARCHING, T0 + S, CallMode.TEXT)
    await recorder.record(ann, ActivityStatus.IN_CALL, T0 + S, CallMode.TEXT)  # paired in the same millisecond
    await writer.close()
    assert await _rows(sessions, ann) == [("ONLINE", None, T0, T0 + S), ("IN_CALL", "TEXT", T0 + S, T0 + S)]


async def test_a_new_recorder_continues_from_the_stored_rows(db) -> None:  # type: ignore[no-untyped-def]
    sessions, writer, recorder, ann = await _setup(db)
    await recorder.record(ann, ActivityStatus.ONLINE, T0)
    await recorder.record(ann, ActivityStatus.OFFLINE, T0 + S)  # gone: no longer held in memory
    await recorder.record(ann, ActivityStatus.ONLINE, T0 + 2 * S)  # read back from the store
    await writer.close()
    # A restarted server: a fresh recorder reads Ann's current row, closes it and starts the next.
    writer = BatchWriter(sessions)
    later = ActivityRecorder(sessions, writer)
    assert await later.status(ann) is ActivityStatus.ONLINE
    await later.record(ann, ActivityStatus.SEARCHING, T0 + 4 * S, CallMode.VIDEO)
    await writer.close()
    assert await _rows(sessions, ann) == [
        ("ONLINE", None, T0, T0 + S),
        ("OFFLINE", None, T0 + S, T0 + 2 * S),
        ("ONLINE", None, T0 + 2 * S, T0 + 4 * S),
        ("SEARCHING", "VIDEO", T0 + 4 * S, T0 + 4 * S),
    ]


async def test_status_of_a_user_without_rows_is_none(db) -> None:  # type: ignore[no-untyped-def]
    sessions, writer, recorder, ann = await _setup(db)
    assert await recorder.status(ann) is None
    await recorder.record(ann, ActivityStatus.ONLINE, T0)
    assert await recorder.status(ann) is ActivityStatus.ONLINE
    await writer.close()
    assert len(await _rows(sessions, ann)) == 1


async def test_a_user_dropped_from_memory_is_read_again(db) -> None:  # type: ignore[no-untyped-def]
    sessions, writer, _, ann = await _setup(db)
    async with sessions.begin() as s:
        bob = (await users.create_user(s, display_name="Bob", now=T0)).id
    recorder = ActivityRecorder(sessions, writer, kept=1)  # each of them pushes the other out
    await recorder.record(ann, ActivityStatus.ONLINE, T0)
    await recorder.record(bob, ActivityStatus.ONLINE, T0)
    await recorder.record(ann, ActivityStatus.SEARCHING, T0 + S, CallMode.TEXT)
    await recorder.record(bob, ActivityStatus.SEARCHING, T0 + S, CallMode.VIDEO)
    await recorder.record(ann, ActivityStatus.IN_CALL, T0 + 3 * S, CallMode.TEXT)
    assert await recorder.heartbeat([ann, bob], T0 + 4 * S) == 2
    await writer.close()
    assert await _rows(sessions, ann) == [
        ("ONLINE", None, T0, T0 + S),
        ("SEARCHING", "TEXT", T0 + S, T0 + 3 * S),
        ("IN_CALL", "TEXT", T0 + 3 * S, T0 + 4 * S),
    ]
    assert await _rows(sessions, bob) == [("ONLINE", None, T0, T0 + S), ("SEARCHING", "VIDEO", T0 + S, T0 + 4 * S)]
