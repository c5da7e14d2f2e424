"""The batch writer on SQLite (its own thread and connection) and PostgreSQL (the async sessions)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
import structlog
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from matching.identity import Role
from matching.store import users
from matching.store.database import session_factory
from matching.store.models import Block, User
from matching.store.writer import INSERT, PARENT, UPDATE, BatchWriter, Write

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
_USERS = User.__table__
_NEW_USER = insert(_USERS)
_RENAME = update(_USERS).where(_USERS.c.id == bindparam("b_id")).values(displayName=bindparam("b_name"))
_BLOCK = insert(Block.__table__)


def _user(user_id: str, rank: int = INSERT) -> Write:
    return Write(_NEW_USER, {"id": user_id, "displayName": user_id, "role": "USER", "topics": [], "isGuest": False,
                             "createdAt": T0, "updatedAt": T0}, rank=rank)


def _rename(user_id: str, name: str, *, checked: bool = False) -> Write:
    return Write(_RENAME, {"b_id": user_id, "b_name": name}, rank=UPDATE, rows=1 if checked else None)


def _block(blocker: str, blocked: str) -> Write:
    return Write(_BLOCK, {"id": f"{blocker}-{blocked}", "blockerId": blocker, "blockedId": blocked, "createdAt": T0},
                 rank=UPDATE)


async def _names(db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    async with session_factory(db.engine)() as s:
        return dict((await s.execute(select(User.id, User.display_name))).all())


@pytest.fixture
async def writer(db):  # type: ignore[no-untyped-def]
    writer = BatchWriter(session_factory(db.engine))
    yield writer
    await writer.close()


async def test_the_writer_path_fits_the_database(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    # SQLite files get the writer's own synchronous connection; PostgreSQL goes through asyncpg.
    assert (writer.engine is not None) is (db.kind == "sqlite")


async def test_concurrent_writes_share_transactions_and_all_land(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    await asyncio.gather(*(writer.commit(_user(f"u{i:03}")) for i in range(200)))
    assert len(await _names(db)) == 200
    # 200 submitters in one turn of the loop: far fewer transactions than writes.
    assert writer.writes == 200 and writer.batches < 20, (writer.batches, writer.writes)


async def test_ranks_order_a_batch_whatever_the_order_of_arrival(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    # The rename arrives first; the insert of its row (and the parent row the block refers to) go first.
    renamed = writer.submit(_rename("ann", "Ann B."))
    blocked = writer.submit(_block("ann", "bob"))
    created = writer.submit(_user("ann"), _user("bob", rank=PARENT))
    await asyncio.gather(renamed, blocked, created)
    assert writer.batches == 1
    assert await _names(db) == {"ann": "Ann B.", "bob": "bob"}


async def test_a_checked_write_reports_whether_it_changed_its_row(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    await writer.commit(_user("ann"))
    outcomes = await writer.commit(_rename("ann", "A", checked=True), _rename("nobody", "N", checked=True),
                                   _rename("ann", "A2"))
    assert outcomes == [True, False, True]
    assert await _names(db) == {"ann": "A2"}


async def test_one_failing_job_does_not_sink_the_others(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    await writer.commit(_user("ann"), _user("bob"))
    good = writer.submit(_user("cy"))
    bad = writer.submit(_block("ann", "nobody"))  # a foreign key to no one
    also_good = writer.submit(_rename("bob", "Bob"))
    with pytest.raises(IntegrityError):
        await bad
    assert await good == [True] and await also_good == [True]
    assert await _names(db) == {"ann": "ann", "bob": "Bob", "cy": "cy"}


async def test_later_writes_are_flushed_and_their_failures_logged(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    with structlog.testing.capture_logs() as logs:
        writer.later(_user("ann"))
        writer.later(_block("ann", "nobody"))
        writer.later(_rename("ann", "Ann"))
        await writer.flush()
    assert await _names(db) == {"ann": "Ann"}
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["a deferred write failed"]


async def test_flush_waits_only_for_writes_handed_over_before_it(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    await writer.flush()  # nothing pending: returns at once
    writer.later(*(_user(f"u{i}") for i in range(50)))
    await writer.flush()
    assert len(await _names(db)) == 50


async def test_the_store_sees_a_commit_before_it_returns(db, writer: BatchWriter) -> None:  # type: ignore[no-untyped-def]
    # Another connection (a REST read) sees a committed write at once.
    sessions = session_factory(db.engine)
    async with sessions.begin() as s:
        await users.ensure_user(s, user_id="ann", role=Role.USER, display_name="Ann", now=T0)
    await writer.commit(_rename("ann", "Ann 2"))
    async with sessions() as s:
        assert (await s.get(User, "ann")).display_name == "Ann 2"  # type: ignore[union-attr]
