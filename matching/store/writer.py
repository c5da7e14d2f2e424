"""Group commit: writes from many requests share one transaction, and like statements one executemany.

Each statement through SQLAlchemy's async layer costs far more CPU than SQLite or PostgreSQL
spend on it (a thread hop per statement with aiosqlite; docs/performance.md has the
figures), and every commit costs another. So the hot path hands its writes to one
`BatchWriter`: a single task takes whatever has queued up since its last transaction, runs it
in one transaction and sends rows of the same statement together. A write someone waits
for goes out on the next turn of the event loop, one nobody waits for within 5 ms (or with the
next one waited for), and writes that arrive while a transaction runs go out together right
after it.

`commit()` returns once the writes are durable (a match row before `match:found`); `later()`
returns at once (activity rows: the request's answer does not depend on them). `flush()` waits
for everything handed over before it, so a reader sees its own earlier writes.

Writes of one batch run in rank order, then in arrival order within a statement. Ranks let
writes that depend on others (an update of a row inserted in the same batch) come after them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import BindParameter

from .database import create_sync_engine

log = structlog.get_logger("pairwire.store")

# How long a write nobody waits for may wait for others to share its transaction (seconds).
LATER_DELAY = 0.005

# Ranks: lower goes first within a batch.
PARENT = 0  # rows that rows inserted in the same batch may refer to
INSERT = 1
UPDATE = 2  # updates may change a row inserted in the same batch


def typed_param(table: Table, name: str, column: str) -> BindParameter[Any]:
    """A named parameter with the type of `table.column` (its value is converted as the column's)."""
    return bindparam(name, type_=table.c[column].type)


def update_where(table: Table, key: str, key_param: str, values: dict[str, str]) -> Update:
    """`UPDATE table SET column = :param, ... WHERE key = :key_param`, built once for executemany."""
    return (
        update(table)
        .where(table.c[key] == bindparam(key_param))
        .values({column: typed_param(table, param, column) for column, param in values.items()})
    )


@dataclass(frozen=True, slots=True)
class Write:
    """One statement with its parameters.

    `rows` is how many rows it must change; it is then run alone and its outcome reported
    (a compare-and-set). None when any outcome will do, so like writes can share an executemany.
    """

    statement: Executable
    params: dict[str, Any]
    rank: int = UPDATE
    rows: int | None = None


@dataclass(slots=True)
class _Job:
    writes: Sequence[Write]
    done: asyncio.Future[list[bool]] | None
    outcomes: list[bool] = field(default_factory=list)


class BatchWriter:
    """Runs the writes handed to it in shared transactions, one transaction at a time.

    On a SQLite file it writes through its own synchronous connection on a thread of its own,
    one hop to that thread a batch: SQLAlchemy's aiosqlite adapter makes several thread hops
    per statement (~0.5 ms of CPU each; 80 us for aiosqlite alone, 2.5 us for sqlite3 itself).
    Elsewhere (PostgreSQL) it uses the async sessions it is given.
    """

    def __init__(self, db: async_sessionmaker[AsyncSession], *, later_delay: float = LATER_DELAY) -> None:
        self._db = db
        self._later_delay = later_delay
        self._pending: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # The writer's own synchronous connection (a SQLite file), or None (it uses `db`).
        self.engine = _sync_sqlite_engine(db)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pairwire-writer") if self.engine else None
        self.batches = 0
        self.writes = 0

    async def commit(self, *writes: Write) -> list[bool]:
        """Write and wait until committed; for each write, whether it changed the rows it must."""
        return await self.submit(*writes)

    def submit(self, *writes: Write) -> asyncio.Future[list[bool]]:
        """Write; the future is done once committed, with `commit`'s answer."""
        done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._submit(_Job(writes, done))
        return done

    def later(self, *writes: Write) -> None:
        """Write without waiting; a failure is logged (nothing waits to hear of it)."""
        if writes:
            self._submit(_Job(writes, None))

    async def flush(self) -> None:
        """Wait until every write handed over before this call is committed (or has failed)."""
        if self._pending or (self._task is not None and not self._task.done()):
            await self.commit()  # batches run in order: when this one is done, so is everything before

    def _submit(self, job: _Job) -> None:
        self._pending.append(job)
        if self._task is not None and not self._task.done():
            return  # the running drain takes it next
        if job.done is not None:
            self._wake()
        elif self._timer is None:
            # Nobody waits for it: let it wait a little for company (the next commit takes it at once).
            self._timer = asyncio.get_running_loop().call_later(self._later_delay, self._wake)

    def _wake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None or self._task.done():
            # A fresh context: the writer must not inherit per-request context of whoever woke it.
            self._task = asyncio.get_running_loop().create_task(self._drain(), context=contextvars.Context())

    async def _drain(self) -> None:
        while self._pending:
            jobs, self._pending = self._pending, []
            await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        for job in jobs:
            job.outcomes = [True] * len(job.writes)
        try:
            if any(job.writes for job in jobs):
                if self.engine is not None:
                    await asyncio.get_running_loop().run_in_executor(self._thread, _execute_sync, self.engine, jobs)
                else:
                    async with self._db.begin() as s:
                        await _execute(s, jobs)
        except Exception as error:
            if len(jobs) == 1:
                _fail(jobs[0], error)
                return
            # One bad write must not sink the others: each job again in a transaction of its own.
            for job in jobs:
                await self._run([job])
            return
        self.batches += 1
        self.writes += sum(len(job.writes) for job in jobs)
        for job in jobs:
            if job.done is not None and not job.done.done():
                job.done.set_result(job.outcomes)

    async def close(self) -> None:
        """Write out what is pending and let go of the writer's own connection."""
        await self.flush()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self.engine is not None:
            self.engine.dispose()


def _fail(job: _Job, error: Exception) -> None:
    if job.done is None:
        log.error("a deferred write failed", error=repr(error), statements=[str(w.statement) for w in job.writes][:3])
    elif not job.done.done():
        job.done.set_exception(error)


def _steps(jobs: list[_Job]) -> list[tuple[Executable, list[dict[str, Any]], list[tuple[_Job, int]]]]:
    """The batch as statements to run in order: rank first, then statement in order of first appearance.

    Writes of one statement share an executemany; a checked write is a step of its own.
    """
    groups: dict[tuple[int, int], list[tuple[_Job, int]]] = {}
    for job in jobs:
        for i, write in enumerate(job.writes):
            key = (write.rank, id(write) if write.rows is not None else id(write.statement))
            groups.setdefault(key, []).append((job, i))
    steps = []
    for _, members in sorted(groups.items(), key=lambda kv: kv[0][0]):
        job, i = members[0]
        steps.append((job.writes[i].statement, [j.writes[k].params for j, k in members], members))
    return steps


def _check(members: list[tuple[_Job, int]], rowcount: int) -> None:
    job, i = members[0]
    rows = job.writes[i].rows
    if rows is not None:
        job.outcomes[i] = rowcount == rows


async def _execute(s: AsyncSession, jobs: list[_Job]) -> None:
    for statement, params, members in _steps(jobs):
        result = await s.execute(statement, params if len(params) > 1 else params[0])
        _check(members, result.rowcount)  # type: ignore[attr-defined]


def _execute_sync(engine: Engine, jobs: list[_Job]) -> None:
    with engine.begin() as conn:
        for statement, params, members in _steps(jobs):
            result = conn.execute(statement, params if len(params) > 1 else params[0])
            _check(members, result.rowcount)


def _sync_sqlite_engine(db: async_sessionmaker[AsyncSession]) -> Engine | None:
    """A synchronous engine on the same SQLite file as `db`'s, or None (not SQLite, or in memory)."""
    bind = getattr(db, "kw", {}).get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "sqlite":
        return None
    url = bind.url
    if not url.database or url.database == ":memory:":
        return None
    return create_sync_engine(url.set(drivername="sqlite"))

