"""Matching is atomic: a randomized concurrency test of the real queue and CallService.

The promise: under any interleaving of joins, leaves, skips and disconnects, nobody is in two
open matches and nobody is matched after leaving. A seeded generator drives hundreds of
operations per seed against `CallService` with its default `LocalQueue`, a real database
(SQLite and PostgreSQL, via the `db` fixture) and a `ManualClock`. Each step launches a random
batch of operations with `asyncio.gather`, so they interleave at every await: queue joins (also
two of one user at once: two tabs, a double click) and leaves, match joins, ends and skips,
disconnects, reconnects (connected + resume, as the transport does), resumes, and clock advances
that fire the fallback sweep, join timeouts and grace timers in the middle of the batch. Most
operations start only after a seeded number of SQL statements (anyone's) has gone by, so they
land inside other operations' transactions (say between a pairing and its commit), and some
runs of batches centre on three users (queue storms). Refusals (PairwireError) are recorded,
not failures; any other exception is a failure.

Everything goes into one trace, in the order it happened: each operation's start and end and
every event handed to the notifier. The invariants are checked after every batch and at the
end, against the trace and against the store:

1. nobody is in two open (PENDING/ACTIVE) matches: at the moment each new match is announced,
   in the store after each batch, and as overlapping match lifetimes in the history;
2. nobody is matched after leaving: after a successful `leave_queue` or a `disconnected`, no
   `match:found` of a new match until a `join_queue` of that user is started (a join the client
   sent *before* the leave does not count: the leave came later and returned success);
3. nobody is matched with themselves, with someone they blocked (either way), or twice with the
   same person within one session (a (session, partner) key per side of every match);
4. every `match:ended` is valid (a closed status; duration, endedBy agree with the store; a call
   that started has an int duration >= 0) and, once everyone has left and time has passed, no
   match is open and nobody waits in the queue;
5. per user, `match:started`/`match:ended` of a match only after that user's `match:found` of
   it, each at most once.

Two races this test found in calls.py (fixed in f2d7daa) are also forced deterministically by
`test_stale_join_*` and `test_leave_*` below, through a session factory that holds an operation
right after its first transaction:
A. join_queue checked "no open match" before taking the queue lock; a user claimed in between
   (by another user's join, the fallback sweep, or a second join of their own) was queued again
   and matched twice.
B. a leave_queue/disconnected sent while the same user's join_queue was in its first transaction
   found nothing to remove and succeeded; the join then queued the user: matched after leaving.

The operations of a seed (who does what, with which parameters) are fixed by the seed; the exact
interleaving also depends on database I/O timing. A failure prints the seed, the batch and the
trace of the users involved. More: PAIRWIRE_FUZZ_SEEDS=7,8,9 PAIRWIRE_FUZZ_OPS=2000 pytest ...
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import os
import random
import traceback
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matching.calls import CallService, CallSettings
from matching.clock import ManualClock
from matching.errors import PairwireError
from matching.identity import Identity, Role
from matching.lifecycle import OPEN, Status
from matching.policy import Mode
from matching.profile import SENIORITY_LEVELS
from matching.store import users
from matching.store.database import session_factory
from matching.store.models import Block, Match

SEEDS = [int(s) for s in os.environ.get("PAIRWIRE_FUZZ_SEEDS", "101,202,303,404,505").split(",") if s.strip()]
OPS_PER_SEED = int(os.environ.get("PAIRWIRE_FUZZ_OPS", "500"))
USERS = 16
TOPICS = ("rust", "go", "python", "webrtc", "sql", "k8s")
MAX_BATCH = 6
MAX_AFTER = 40  # statements; see Op.after
REACT = 0.6  # chance that a client joins a match right after its match:found
FOCUS_BATCHES = 0.25  # chance that the next batches centre on one user: a queue storm
# Clock steps: mostly small, sometimes past the 15 s grace or the 30 s fallback/join timeout.
ADVANCES = (0.05, 0.3, 1.0, 2.5, 6.0, 16.0, 31.0)
ADVANCE_WEIGHTS = (12, 12, 8, 5, 3, 1, 1)
KINDS = ("join_queue", "leave_queue", "join_match", "end_match", "resume", "disconnect")
KIND_WEIGHTS = (32, 8, 20, 26, 4, 4)
FOCUS_KIND_WEIGHTS = (40, 25, 10, 10, 5, 10)
CLOSED_STATUSES = {Status.ENDED.value, Status.SKIPPED.value, Status.TIMEOUT.value}
OPEN_STATUSES = {s.value for s in OPEN}


# ------------------------------------------------------------------------------ recording


class Recorder:
    """The notifier: every event, in order, into the shared trace; looks at the store as each new match is announced."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self.db = db
        self.trace: list[tuple[Any, ...]] = []
        self.told: dict[str, list[str]] = defaultdict(list)  # user -> matchIds of match:found, first-seen order
        self.found_at: dict[tuple[str, str], int] = {}  # (user, matchId) -> trace index of the first match:found
        self.doubles: list[tuple[int, str, str, list[str]]] = []  # (trace index, user, new match, open matches)
        self.reactions: list[tuple[str, str]] = []  # (user, matchId) of each first match:found, for the driver
        self._announced: set[str] = set()

    async def send(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        self.trace.append(("event", user_id, event, payload))
        await asyncio.sleep(0)  # delivery yields, as a real emit does: others run between the two sides' events
        if event != "match:found":
            return
        match_id = payload["matchId"]
        if (user_id, match_id) not in self.found_at:
            self.found_at[(user_id, match_id)] = len(self.trace) - 1
            self.told[user_id].append(match_id)
            self.reactions.append((user_id, match_id))
        if match_id not in self._announced:
            self._announced.add(match_id)
            await self._at_announcement(match_id, (user_id, payload["partner"]["id"]))

    async def _at_announcement(self, match_id: str, people: tuple[str, str]) -> None:
        # Invariant 1 at the sharpest moment: the new match is committed and being announced.
        index = len(self.trace) - 1
        async with self.db() as s:
            rows = (await s.execute(select(Match).where(Match.status.in_(tuple(OPEN))))).scalars().all()
        for person in people:
            mine = [r.id for r in rows if person in (r.user1_id, r.user2_id)]
            if len(mine) > 1:
                self.doubles.append((index, person, match_id, mine))


class StatementTicker:
    """Counts the SQL statements anyone sends; an operation can start right after the n-th from now.

    Starting operations at statement boundaries (not after real time) puts them inside other
    operations' transactions, e.g. between a pairing and its commit, wherever the seed says.
    """

    def __init__(self, engine: Any, give_up: float = 0.5) -> None:
        self._engine = engine.sync_engine
        self._give_up = give_up  # a safety net only: see idle()
        self.count = 0
        self.running = 0  # operations started and not finished
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0
        event.listen(self._engine, "before_cursor_execute", self._tick)

    def _tick(self, *_: Any) -> None:
        self.count += 1
        while self._waiting and self._waiting[0][0] <= self.count:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)

    def idle(self) -> None:
        """Nothing runs, so no statement will come: start the next waiting operation now."""
        while self._waiting and self.running == 0:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return

    async def wait(self, statements: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiting, (self.count + statements, self._seq, future))
        try:
            await asyncio.wait_for(future, self._give_up)
        except TimeoutError:
            pass

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._tick)


@dataclass
class Op:
    kind: str
    user: int | None  # index into the seed's users; None for a clock advance
    args: dict[str, Any] = field(default_factory=dict)
    after: int = 0  # SQL statements (anyone's) to let pass before it starts: it lands in the middle of others


@dataclass
class OpRecord:
    user_id: str | None
    kind: str
    start: int
    end: int | None = None
    outcome: str | None = None
    result: Any = None


# ------------------------------------------------------------------------------ checks of the trace


@dataclass
class _UserView:
    found: set[str] = field(default_factory=set)
    out_since: tuple[int, str, tuple[int, ...]] | None = None  # (trace index, what, joins of theirs it raced)
    last_join_start: int = -1


class TraceChecker:
    """Invariants 2, 4 (payloads) and 5, fed the trace incrementally."""

    def __init__(self) -> None:
        self.pos = 0
        self.views: dict[str, _UserView] = defaultdict(_UserView)
        self.starts: dict[int, int] = {}
        self.running: dict[int, tuple[str | None, str]] = {}  # op id -> (user, kind): started, not ended
        self.racing: dict[int, tuple[int, ...]] = {}  # leave/disconnect op id -> that user's joins running at its start
        self.started: Counter[tuple[str, str]] = Counter()
        self.ended: Counter[tuple[str, str]] = Counter()
        self.ended_payloads: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []

    def feed(self, trace: list[tuple[Any, ...]]) -> None:
        while self.pos < len(trace):
            self._one(self.pos, trace[self.pos])
            self.pos += 1

    def _one(self, i: int, entry: tuple[Any, ...]) -> None:
        tag = entry[0]
        if tag == "start":
            _, op_id, user_id, kind, _args = entry
            self.starts[op_id] = i
            if kind in ("leave_queue", "disconnected"):
                # Sent while earlier join_queue(s) of the same user are still being handled.
                self.racing[op_id] = tuple(o for o, uk in self.running.items() if uk == (user_id, "join_queue"))
            self.running[op_id] = (user_id, kind)
            if kind == "join_queue":
                view = self.views[user_id]
                view.last_join_start, view.out_since = i, None
        elif tag == "end":
            _, op_id, user_id, kind, outcome = entry
            self.running.pop(op_id, None)
            joins = self.racing.pop(op_id, ())
            if kind in ("leave_queue", "disconnected") and outcome == "ok":
                view = self.views[user_id]
                # A join started after this leave was sent later by the client: it wins.
                if view.last_join_start < self.starts[op_id]:
                    view.out_since = (i, f"{kind} #{op_id} returned", joins)
        elif tag == "event":
            _, user_id, event, payload = entry
            view = self.views[user_id]
            match_id = payload.get("matchId")
            if event == "match:found":
                if match_id not in view.found:
                    if view.out_since is not None:
                        at, what, joins = view.out_since
                        running = ", ".join(f"#{j}" for j in joins)
                        note = f" (sent while join_queue {running} was running)" if joins else ""
                        self.violations.append(
                            f"[2] trace #{i}: user {user_id} got match:found of NEW match {match_id} after leaving: "
                            f"{what}{note} at trace #{at}, no join_queue started since")
                    view.found.add(match_id)
            elif event in ("match:started", "match:ended"):
                if match_id not in view.found:
                    self.violations.append(
                        f"[5] trace #{i}: user {user_id} got {event} of {match_id} before its match:found")
                counter = self.started if event == "match:started" else self.ended
                counter[(user_id, match_id)] += 1
                if counter[(user_id, match_id)] > 1:
                    self.violations.append(f"[5] trace #{i}: user {user_id} got {event} of {match_id} twice")
                if event == "match:ended":
                    self._check_ended_payload(i, payload)

    def _check_ended_payload(self, i: int, payload: dict[str, Any]) -> None:
        status, duration = payload.get("status"), payload.get("duration")
        problems = []
        if status not in CLOSED_STATUSES:
            problems.append(f"status {status!r}")
        if duration is not None and (type(duration) is not int or duration < 0):
            problems.append(f"duration {duration!r}")
        if status == Status.TIMEOUT.value and (duration is not None or payload.get("endedBy") is not None):
            problems.append("a TIMEOUT with a duration or an endedBy")
        if problems:
            self.violations.append(f"[4] trace #{i}: bad match:ended payload ({', '.join(problems)}): {payload}")
        first = self.ended_payloads.setdefault(payload["matchId"], payload)
        if first != payload:
            self.violations.append(f"[4] trace #{i}: the two sides got different match:ended: {first} vs {payload}")


# ------------------------------------------------------------------------------ checks of the store


def _overlap(a: Match, b: Match) -> bool:
    far = datetime.max.replace(tzinfo=timezone.utc)
    return max(a.matched_at, b.matched_at) < min(a.ended_at or far, b.ended_at or far)


async def store_violations(
    db: async_sessionmaker[AsyncSession], blocked: set[frozenset[str]], ended_payloads: dict[str, dict[str, Any]]
) -> list[str]:
    """Invariants 1, 3 and 4 over every Match row."""
    async with db() as s:
        rows = (await s.execute(select(Match).order_by(Match.matched_at, Match.id))).scalars().all()
    found: list[str] = []
    by_user: dict[str, list[Match]] = defaultdict(list)
    per_session: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    for r in rows:
        by_user[r.user1_id].append(r)
        by_user[r.user2_id].append(r)
        if r.user1_id == r.user2_id:
            found.append(f"[3] match {r.id} pairs {r.user1_id} with themselves")
        if frozenset((r.user1_id, r.user2_id)) in blocked:
            found.append(f"[3] match {r.id} pairs {r.user1_id} and {r.user2_id}, who are blocked")
        # One key per side: (my session, my partner). A repeat is the same pair twice in a session,
        # whichever of the two was user1 each time.
        per_session[(r.user1_session_id, r.user2_id)].append(r.id)
        per_session[(r.user2_session_id, r.user1_id)].append(r.id)
        if r.user1_session_id is None or r.user2_session_id is None:
            found.append(f"[3] match {r.id} has no session on one side")
        status = r.status.value
        problems = []
        if status in CLOSED_STATUSES:
            if r.ended_at is None:
                problems.append("closed without endedAt")
            if (r.started_at is None) != (r.duration is None):
                problems.append(f"startedAt={r.started_at} but duration={r.duration}")
            if r.duration is not None and (type(r.duration) is not int or r.duration < 0):
                problems.append(f"duration {r.duration!r}")
            if status == Status.TIMEOUT.value and (r.started_at is not None or r.ended_by is not None):
                problems.append("TIMEOUT but started or ended by someone")
            if status in (Status.ENDED.value, Status.SKIPPED.value) and r.ended_by not in (r.user1_id, r.user2_id):
                problems.append(f"{status} by {r.ended_by!r}, not one of its people")
            sent = ended_payloads.get(r.id)
            stored = (status, r.duration, r.ended_by)
            if sent is not None and (sent["status"], sent["duration"], sent["endedBy"]) != stored:
                problems.append(f"match:ended said {sent} but the store has {stored}")
        elif status == Status.ACTIVE.value:
            if r.started_at is None or r.user1_joined_at is None or r.user2_joined_at is None:
                problems.append("ACTIVE without startedAt or both joins")
        elif status != Status.PENDING.value:
            problems.append(f"status {status}")
        if r.id in ended_payloads and status not in CLOSED_STATUSES:
            problems.append(f"match:ended was sent but it is {status} in the store")
        found += [f"[4] match {r.id}: {p}" for p in problems]
    for (session_id, partner), ids in per_session.items():
        if len(ids) > 1:
            found.append(f"[3] session {session_id} was matched {len(ids)} times with {partner}: {ids}")
    for user_id, mine in by_user.items():
        open_ids = tuple(m.id for m in mine if m.status.value in OPEN_STATUSES)
        if len(open_ids) > 1:
            found.append(f"[1] user {user_id} is in {len(open_ids)} open matches: {list(open_ids)}")
        for i, a in enumerate(mine):
            for b in mine[i + 1:]:
                if _overlap(a, b):
                    found.append(f"[1] user {user_id} was in {a.id} ({a.matched_at}..{a.ended_at}) and "
                                 f"{b.id} ({b.matched_at}..{b.ended_at}) at the same time")
    return found


# ------------------------------------------------------------------------------ the driver


class Run:
    """One seed: users, blocks, the service, the planned operations and the checks."""

    def __init__(self, seed: int, engine: Any) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.react = random.Random(-seed)
        self.db = session_factory(engine)
        self.recorder = Recorder(self.db)
        self.clock = ManualClock()
        self.service = CallService(
            db=self.db,
            notifier=self.recorder,
            clock=self.clock,
            settings=CallSettings(join_timeout=30.0, disconnect_grace=15.0),
        )
        self.checker = TraceChecker()
        self.ticker = StatementTicker(engine)
        self.people: list[Identity] = []
        self.labels: dict[str, str] = {}
        self.index: dict[str, int] = {}
        self.blocked: set[frozenset[str]] = set()
        self.online: list[bool] = []
        self.op_ids = iter(range(1, 10**9))
        self.op_records: dict[int, OpRecord] = {}
        self.ops = 0
        self.kinds: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.crashes: list[str] = []
        self.batch = 0
        self._doubles_seen = 0
        self.focus: list[int] = []
        self.focus_left = 0

    async def setup(self) -> None:
        now = self.clock.now()
        async with self.db.begin() as s:
            for n in range(USERS):
                topics = self.rng.sample(TOPICS, self.rng.randint(0, 3))
                seniority = self.rng.choice((None, *SENIORITY_LEVELS))
                user = await users.create_user(s, display_name=f"u{n:02d}", topics=topics, seniority=seniority, now=now)
                self.people.append(Identity(user.id, Role.USER))
                self.labels[user.id] = f"u{n:02d}"
                self.index[user.id] = n
            for _ in range(3):
                a, b = self.rng.sample(range(USERS), 2)
                pair = frozenset((self.people[a].user_id, self.people[b].user_id))
                if pair not in self.blocked:
                    self.blocked.add(pair)
                    s.add(Block(blocker_id=self.people[a].user_id, blocked_id=self.people[b].user_id))
        for who in self.people:
            await self.service.connected(who)
        self.online = [True] * USERS

    # -------------------------------------------------------------------- planning

    def plan_batch(self) -> list[Op]:
        """A batch fixed by the seed: at most one clock advance; per user, nothing after its
        disconnect in the same batch (a dropped connection sends nothing more), and an offline
        user only reconnects. A user may have several operations in one batch."""
        rng = self.rng
        batch: list[Op] = []
        advanced, quiet = False, set()
        # Clients mostly join a match as soon as they are told about it (drawn from a second
        # generator: these depend on what happened, the seed's own plan below does not).
        for user_id, match_id in self.recorder.reactions:
            n = self.index[user_id]
            if self.online[n] and self.react.random() < REACT:
                batch.append(Op("join_match", n, {"matchId": match_id}, self.react.randint(0, MAX_AFTER)))
        self.recorder.reactions.clear()
        if self.focus_left <= 0 and rng.random() < FOCUS_BATCHES:
            # A few batches around one user and two others: their operations overlap far more often.
            self.focus, self.focus_left = rng.sample(range(USERS), 3), rng.randint(2, 5)
        self.focus_left -= 1
        focus = self.focus if self.focus_left >= 0 else None
        for _ in range(rng.randint(1, MAX_BATCH)):
            after = 0 if rng.random() < 0.4 else rng.randint(1, MAX_AFTER)
            if rng.random() < 0.2:
                if not advanced:
                    advanced = True
                    batch.append(Op("advance", None, {"seconds": rng.choices(ADVANCES, ADVANCE_WEIGHTS)[0]}, after))
                continue
            n = rng.randrange(USERS) if focus is None else focus[0] if rng.random() < 0.5 else rng.choice(focus[1:])
            kind = rng.choices(KINDS, KIND_WEIGHTS if focus is None else FOCUS_KIND_WEIGHTS)[0]
            mode = Mode.VIDEO if rng.random() < 0.9 else Mode.TEXT
            topics = rng.sample(TOPICS, rng.randint(1, 3)) if rng.random() < 0.4 else None
            pick, skip = rng.random(), rng.random() < 0.5
            if n in quiet:
                continue
            if not self.online[n]:
                batch.append(Op("reconnect", n, after=after))
                self.online[n] = True
                quiet.add(n)
            elif kind == "join_queue":
                batch.append(Op(kind, n, {"mode": mode, "topics": topics}, after))
            elif kind in ("join_match", "end_match"):
                batch.append(Op(kind, n, {"pick": pick, "skip": skip}, after))
            elif kind == "disconnect":
                # Last of this user's batch: the connection's earlier requests may still be running.
                earlier = [o.after + 1 for o in batch if o.user == n]
                batch.append(Op("disconnected", n, after=max([after, *earlier])))
                self.online[n] = False
                quiet.add(n)
            else:
                batch.append(Op(kind, n, after=after))
        return batch

    def _match_for(self, user_id: str, pick: float) -> str:
        """A match this user was told about: mostly the latest, sometimes an older one."""
        told = self.recorder.told.get(user_id, [])
        if not told:
            return "no-such-match"
        if pick < 0.8 or len(told) == 1:
            return told[-1]
        return told[int(pick * 1000) % len(told)]

    # -------------------------------------------------------------------- running

    def _call(self, op: Op) -> tuple[str | None, Callable[[], Awaitable[Any]], dict[str, Any]]:
        svc = self.service
        if op.kind == "advance":
            return None, lambda: self.clock.advance(op.args["seconds"]), op.args
        assert op.user is not None
        who = self.people[op.user]
        if op.kind == "join_queue":
            return who.user_id, lambda: svc.join_queue(who, op.args["mode"], op.args["topics"]), op.args
        if op.kind == "leave_queue":
            return who.user_id, lambda: svc.leave_queue(who), {}
        if op.kind in ("join_match", "end_match"):
            # Resolved when the operation starts, from what the user has been told by then.
            match_id = op.args.get("matchId") or self._match_for(who.user_id, op.args["pick"])
            if op.kind == "join_match":
                return who.user_id, lambda: svc.join_match(who, match_id), {"matchId": match_id}
            skip = op.args["skip"]
            return who.user_id, lambda: svc.end_match(who, match_id, skip=skip), {"matchId": match_id, "skip": skip}
        if op.kind == "disconnected":
            return who.user_id, lambda: svc.disconnected(who), {}
        if op.kind == "resume":
            return who.user_id, lambda: svc.resume(who), {}
        if op.kind == "reconnect":
            async def reconnect() -> None:  # what the transport does for a new connection
                await svc.connected(who)
                await svc.resume(who)
            return who.user_id, reconnect, {}
        raise AssertionError(op.kind)

    async def _run(self, op: Op) -> None:
        if op.after:
            await self.ticker.wait(op.after)
        op_id = next(self.op_ids)
        user_id, call, args = self._call(op)
        trace = self.recorder.trace
        record = self.op_records[op_id] = OpRecord(user_id, op.kind, len(trace))
        trace.append(("start", op_id, user_id, op.kind, args))
        self.ops += 1
        self.kinds[op.kind] += 1
        self.ticker.running += 1
        try:
            record.result = await call()
        except PairwireError as exc:
            self.refusals[f"{op.kind}:{exc.code}"] += 1
            record.outcome = exc.code
        except Exception:  # anything else is a bug of the service (or of this test)
            self.crashes.append(f"op #{op_id} {op.kind} of {user_id}:\n{traceback.format_exc()}")
            record.outcome = "CRASH"
        else:
            record.outcome = "ok"
        finally:
            self.ticker.running -= 1
            self.ticker.idle()
        record.end = len(trace)
        trace.append(("end", op_id, user_id, op.kind, record.outcome))

    async def run_batch(self, batch: list[Op]) -> None:
        self.batch += 1

        async def kick() -> None:  # when every operation of the batch waits for statements
            await asyncio.sleep(0)
            self.ticker.idle()

        await asyncio.gather(*(self._run(op) for op in batch), kick())
        await self.check(f"after batch {self.batch}")

    async def finish(self) -> None:
        """Everyone leaves; time passes: every match must close and the queue empty."""
        self.batch += 1
        gone = [Op("disconnected", n) for n in range(USERS) if self.online[n]]
        self.online = [False] * USERS
        await asyncio.gather(*(self._run(op) for op in gone))
        for _ in range(4):
            await self._run(Op("advance", None, {"seconds": 40.0}))
        await self.check("at the end")
        problems = []
        async with self.db() as s:
            still_open = (await s.execute(select(Match).where(Match.status.in_(tuple(OPEN))))).scalars().all()
        problems += [f"[4] match {m.id} ({m.user1_id}, {m.user2_id}) is still {m.status.value} after everyone left"
                     for m in still_open]
        for who in self.people:
            if (await self.service.queue_status(who))["inQueue"]:
                problems.append(f"[4] user {who.user_id} still waits in the queue after leaving the site")
        if problems:
            self.fail("at the end", problems)
        await self.service.close()
        self.ticker.close()

    # -------------------------------------------------------------------- checking

    def _two_open(self, index: int, user_id: str, new: str, open_ids: list[str]) -> str:
        """Two open matches, and any join_queue of the user that ran across the found of the other one
        (its no-open-match check came before that match, its queueing after: race A)."""
        others = [m for m in open_ids if m != new]
        stale = []
        for old in others:
            found = self.recorder.found_at.get((user_id, old), -1)
            for op_id, rec in self.op_records.items():
                if (rec.user_id == user_id and rec.kind == "join_queue" and rec.start < found
                        and (rec.end is None or rec.end > found)
                        and not (isinstance(rec.result, dict) and rec.result.get("matchId") == old)):
                    stale.append(f"join_queue #{op_id} (trace #{rec.start}..#{rec.end}) ran across the "
                                 f"match:found of {old} (trace #{found})")
        text = (f"[1] trace #{index} (match:found of {new}): user {user_id} has {len(open_ids)} open matches "
                f"{open_ids}" + (f"; {'; '.join(stale)}" if stale else ""))
        return text

    async def check(self, when: str) -> None:
        if self.crashes:
            self.fail(when, ["an operation raised something other than a PairwireError:", *self.crashes])
        doubles = self.recorder.doubles[self._doubles_seen:]
        self._doubles_seen = len(self.recorder.doubles)
        problems = [self._two_open(*d) for d in doubles]
        self.checker.feed(self.recorder.trace)
        problems += self.checker.violations
        self.checker.violations = []
        problems += await store_violations(self.db, self.blocked, self.checker.ended_payloads)
        if problems:
            self.fail(when, problems)

    # -------------------------------------------------------------------- reporting

    def _name(self, text: str) -> str:
        for user_id, label in self.labels.items():
            text = text.replace(user_id, label)
        return text

    def _line(self, i: int, entry: tuple[Any, ...]) -> str:
        if entry[0] == "event":
            _, user_id, event, payload = entry
            brief = {k: v for k, v in payload.items() if k in ("matchId", "status", "duration", "endedBy")}
            if "partner" in payload:
                brief["partner"] = payload["partner"]["id"]
            return f"{i:6d}  {user_id}  <- {event} {brief}"
        tag, op_id, user_id, kind, extra = entry
        return f"{i:6d}  {user_id or '(clock)'}  {tag} #{op_id} {kind} {extra}"

    def fail(self, when: str, problems: list[str]) -> None:
        trace = self.recorder.trace
        involved = {uid for uid in self.labels if any(uid in p for p in problems)}
        # ... and everyone in the matches they name (the partner whose join made the match, say).
        events = [e for e in trace if e[0] == "event" and e[3].get("matchId")]
        named = {e[3]["matchId"] for e in events if any(e[3]["matchId"] in p for p in problems)}
        involved |= {e[1] for e in events if e[3]["matchId"] in named}
        lines = [self._line(i, e) for i, e in enumerate(trace)
                 if not involved or any(uid in str(e) for uid in involved)]
        details = "\n".join(self._name(p) for p in problems[:20])
        tail = "\n".join(self._name(line) for line in lines[-120:])
        pytest.fail(
            f"seed={self.seed} {when} ({self.ops} operations so far): {len(problems)} violation(s)\n{details}\n"
            f"--- trace of the users involved (last 120 lines; user ids shown as labels) ---\n{tail}\n"
            f"ops planned by seed {self.seed}; interleaving also depends on I/O timing. Rerun: "
            f"PAIRWIRE_FUZZ_SEEDS={self.seed} .venv/bin/pytest tests/matching/test_concurrency.py",
            pytrace=False,
        )

    def summary(self) -> str:
        events = Counter(e[2] for e in self.recorder.trace if e[0] == "event")
        return (f"seed={self.seed}: {self.ops} ops in {self.batch} batches {dict(self.kinds)}; "
                f"refused {dict(self.refusals)}; events {dict(events)}")


@pytest.mark.parametrize("seed", SEEDS)
async def test_matching_is_atomic_under_random_interleavings(db, seed: int) -> None:  # type: ignore[no-untyped-def]
    run = Run(seed, db.engine)
    await run.setup()
    while run.ops < OPS_PER_SEED:
        await run.run_batch(run.plan_batch())
    await run.finish()
    # The run must really have exercised the service, or passing proves nothing.
    async with run.db() as s:
        rows = (await s.execute(select(Match))).scalars().all()
    statuses = Counter(m.status.value for m in rows)
    started = sum(1 for m in rows if m.started_at is not None)
    print(f"[{db.kind}] {run.summary()}; matches {dict(statuses)}, {started} started")
    assert run.ops >= OPS_PER_SEED, run.summary()
    assert len(rows) >= 10 and started >= 1, (statuses, started, run.summary())
    assert statuses["ENDED"] >= 2 and statuses["SKIPPED"] >= 2, (statuses, run.summary())
    assert run.refusals["join_queue:conflict"] and run.refusals["end_match:conflict"], run.summary()


# ------------------------------------------------------------------------------ the two races, forced


_hold: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("hold", default=None)


class Gate:
    """Holds one operation right after its first transaction commits, until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()


class HoldingSessions:
    """The service's session factory; an operation run under a Gate stops after its first `begin()` block.

    A join whose user is not in the service's memory reads them in one transaction before its
    "no open match" check; stopping there holds the join before the check and its queueing
    under the lock. The service keeps one person in memory, so each test can make sure the
    user of the held join is not.
    """

    def __init__(self, inner: async_sessionmaker[AsyncSession]) -> None:
        self._inner = inner

    def __call__(self, **kw: Any) -> AsyncSession:
        return self._inner(**kw)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        async with self._inner.begin() as s:
            yield s
        gate = _hold.get()
        if gate is not None:
            _hold.set(None)
            gate.reached.set()
            await gate.released.wait()


async def _held(gate: Gate, call: Awaitable[Any]) -> Any:
    _hold.set(gate)  # this task's context only
    return await call


async def _race_setup(db):  # type: ignore[no-untyped-def]
    factory = session_factory(db.engine)
    recorder = Recorder(factory)
    clock = ManualClock()
    service = CallService(db=HoldingSessions(factory), notifier=recorder, clock=clock,  # type: ignore[arg-type]
                          settings=CallSettings(people_kept=1))
    people = []
    async with factory.begin() as s:
        for name in ("ann", "bob", "dan"):
            user = await users.create_user(s, display_name=name, topics=["rust"], seniority="mid", now=clock.now())
            people.append(Identity(user.id, Role.USER))
    for who in people:
        await service.connected(who)
    return factory, recorder, clock, service, people


async def _open_matches(factory: async_sessionmaker[AsyncSession], user_id: str) -> list[str]:
    async with factory() as s:
        rows = (await s.execute(select(Match).where(Match.status.in_(tuple(OPEN))))).scalars().all()
    return [r.id for r in rows if user_id in (r.user1_id, r.user2_id)]


async def test_stale_join_does_not_make_a_second_open_match(db) -> None:  # type: ignore[no-untyped-def]
    """Race A: Ann's second join has checked "no open match" when Bob's join pairs her; it must not queue her again."""
    factory, recorder, clock, service, (ann, bob, dan) = await _race_setup(db)
    await service.join_queue(ann, Mode.VIDEO)  # Ann waits
    await clock.advance(1.0)
    await service.connected(dan)  # Dan is read: Ann is no longer in memory, her next join reads the store
    gate = Gate()
    rejoin = asyncio.create_task(_held(gate, service.join_queue(ann, Mode.VIDEO)))  # e.g. a second tab
    await gate.reached.wait()  # Ann's join has checked: no open match
    first = await service.join_queue(bob, Mode.VIDEO)  # Bob is paired with the waiting Ann
    assert first.get("matchId") and await _open_matches(factory, ann.user_id) == [first["matchId"]]
    gate.released.set()
    with contextlib.suppress(PairwireError):  # a conflict is the right answer
        await rejoin
    await service.join_queue(dan, Mode.VIDEO)  # Dan must not be paired with Ann too
    await service.close()
    assert await _open_matches(factory, ann.user_id) == [first["matchId"]]


@pytest.mark.parametrize("how", ["leave_queue", "disconnected"])
async def test_leave_sent_after_a_join_is_not_overtaken(db, how: str) -> None:  # type: ignore[no-untyped-def]
    """Race B: Ann's leave (or drop) arrives while her earlier join is in its first transaction."""
    factory, recorder, clock, service, (ann, bob, _) = await _race_setup(db)
    gate = Gate()
    join = asyncio.create_task(_held(gate, service.join_queue(ann, Mode.VIDEO)))  # sent first
    await gate.reached.wait()
    leave = asyncio.create_task(getattr(service, how)(ann))  # sent second
    # Either it is answered at once (then it must still win over the join), or it waits for the join.
    await asyncio.wait({leave}, timeout=0.5)
    gate.released.set()
    await join
    assert await leave in ({}, None)
    await service.join_queue(bob, Mode.VIDEO)
    await service.close()
    found = [e for e in recorder.trace if e[1] == ann.user_id and e[2] == "match:found"]
    assert found == [], f"Ann was matched after {how} returned"
    assert not (await service.queue_status(ann))["inQueue"]
