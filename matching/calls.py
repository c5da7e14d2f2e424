"""The call service: queue, sessions, matches, signalling relay, chat and presence.

Socket.IO handlers and REST routes both call this; it never imports them. It talks to people
through a `Notifier` (emit an event to a user) and keeps time with an injected `Clock`.

Ordering: every queue decision (join, leave, pairing, the fallback sweep) runs under one
lock, and a pairing's `match:found` is handed to the notifier before the lock is released.
So whatever the server decided for a user before answering that user's request is sent
before the answer (the contract's delivery order).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import limits
import structlog
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .clock import Clock, Timer, iso
from .errors import Conflict, Invalid, NotFound, RateLimited, TooLarge
from .ice import IceConfig, ice_servers_for
from .identity import Identity
from .lifecycle import MatchState, Status, end, join, require_open
from .policy import Mode, Waiting
from .profile import seniority_rank
from .queue import Claimed, LocalQueue, MatchQueue, Ticket
from .store import chat, matches, sessions, users
from .store.activity import ActivityRecorder
from .store.models import ActivityStatus, CallMode, new_id
from .store.writer import BatchWriter

log = structlog.get_logger("pairwire.calls")

EXHAUSTED_MESSAGE = "No new matches available. Start a new session to match with more users."
SIGNAL_KINDS = frozenset({"offer", "answer", "candidate"})


class Notifier(Protocol):
    """Delivers a server event to every connection of one user."""

    async def send(self, user_id: str, event: str, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class CallSettings:
    """The service's limits and timeouts (seconds)."""

    join_timeout: float = 30.0
    disconnect_grace: float = 15.0
    chat_max_chars: int = 2000
    chat_rate: str = "20/10 seconds"
    ice: IceConfig = field(default_factory=IceConfig)
    # People whose queue-join facts are kept in memory; one dropped is read from the store again.
    people_kept: int = 100_000


def _db_mode(mode: Mode) -> CallMode:
    return CallMode.VIDEO if mode is Mode.VIDEO else CallMode.TEXT


@dataclass(slots=True)
class _Person:
    """What a queue join reads about a user: read once, then kept current by the code that changes it."""

    display_name: str
    topics: tuple[str, ...]
    seniority: int | None
    session_id: str | None  # the active matching session
    met: list[str]  # matchedUserIds of that session
    excluded: frozenset[str]


@dataclass(slots=True)
class _Opening:
    """A match claimed from the queue whose row is on its way to the store."""

    claimed: Claimed
    state: MatchState
    met: dict[str, list[str]]  # each side's session: matchedUserIds with the partner added
    stored: asyncio.Future[list[bool]]


class CallService:
    """Everything a user does between pressing Start and leaving the site."""

    def __init__(
        self,
        *,
        db: async_sessionmaker[AsyncSession],
        notifier: Notifier,
        clock: Clock,
        settings: CallSettings | None = None,
        queue: MatchQueue | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self._db = db
        self._notify = notifier
        self._clock = clock
        self.settings = settings or CallSettings()
        self.writer = writer or BatchWriter(db)
        self.activity = ActivityRecorder(db, self.writer, kept=self.settings.people_kept)
        self._people: OrderedDict[str, _Person] = OrderedDict()
        self._queue: MatchQueue = queue or LocalQueue()
        self._lock = asyncio.Lock()
        # A user's own queue operations (join, leave, disconnect, session end, grace expiry)
        # run one at a time, in arrival order: a leave sent after a join is never overtaken.
        self._user_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        # Open matches by user, written under the queue lock when a pairing is stored: a join
        # that checked the store before someone else claimed this user sees it here.
        self._user_match: dict[str, str] = {}
        # Matches made but not yet announced (their row is being written): whoever would
        # reveal one to its people waits for its `match:found` to go out first.
        self._announcing: dict[str, asyncio.Event] = {}
        # A cache of open matches for the relay's hot path; the store stays the truth.
        self._open: dict[str, MatchState] = {}
        # One lock a match: a transition and the events it causes go out before the next
        # transition of that match is even tried, so a refusal never overtakes the event.
        self._match_locks: dict[str, asyncio.Lock] = {}
        self._join_timers: dict[str, Timer] = {}
        self._grace_timers: dict[str, Timer] = {}
        self._fallback_timer: Timer | None = None
        self._fallback_at: float | None = None
        self._chat_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._chat_rate = limits.parse(self.settings.chat_rate)

    @asynccontextmanager
    async def _user(self, user_id: str) -> AsyncIterator[None]:
        lock, users_waiting = self._user_locks.setdefault(user_id, (asyncio.Lock(), [0]))
        users_waiting[0] += 1
        try:
            async with lock:
                yield
        finally:
            users_waiting[0] -= 1
            if users_waiting[0] == 0:
                self._user_locks.pop(user_id, None)

    # ------------------------------------------------------------------ presence

    async def connected(self, who: Identity) -> None:
        """A connection of `who` is up: the grace period (if any) stops, and the user is ONLINE."""
        grace = self._grace_timers.pop(who.user_id, None)
        if grace is not None:
            grace.cancel()
        now = self._clock.now()
        await self._person(who)
        status = await self.activity.status(who.user_id)
        if status is None or status is ActivityStatus.OFFLINE:
            await self.activity.record(who.user_id, ActivityStatus.ONLINE, now)

    async def resume(self, who: Identity) -> None:
        """Offer a match still open to a returning user again; both sides rebuild their peer connection."""
        async with self._db() as s:
            open_match = await matches.open_match_for(s, who.user_id)
        if open_match is not None:
            # Both sides rebuild their peer connection for the same match.
            self._open[open_match.id] = open_match
            await self._announce(open_match)

    async def disconnected(self, who: Identity) -> None:
        """The last connection of `who` dropped: leave the queue now, the match after the grace period."""
        async with self._user(who.user_id):
            await self._unqueue(who.user_id)
        self._grace_timers[who.user_id] = self._clock.call_later(
            self.settings.disconnect_grace, lambda: self._gone(who.user_id)
        )

    def in_grace(self, user_id: str) -> bool:
        """True while a user who dropped can still come back to their match."""
        return user_id in self._grace_timers

    async def _gone(self, user_id: str) -> None:
        self._grace_timers.pop(user_id, None)
        async with self._user(user_id):
            await self._leave_for_good(user_id)

    async def _leave_for_good(self, user_id: str) -> None:
        now = self._clock.now()
        open_match = await self._settled_match(user_id)
        if open_match is not None:
            try:
                await self._end(open_match, user_id, Status.ENDED)
            except (Conflict, NotFound):
                pass
        async with self._db.begin() as s:
            await sessions.end_sessions(s, user_id, now)
        self._people.pop(user_id, None)
        await self.activity.record(user_id, ActivityStatus.OFFLINE, now)
        log.info("user left after the grace period", user_id=user_id)

    async def heartbeat(self, user_ids: list[str]) -> None:
        """Keep `lastSeen` of connected users current."""
        await self.activity.heartbeat(user_ids, self._clock.now())

    # ------------------------------------------------------------------ sessions

    async def start_session(self, who: Identity) -> sessions.UserSession:
        """Start a new matching session (ending the active one): everyone becomes new again."""
        now = self._clock.now()
        async with self._db.begin() as s:
            await users.ensure_user(s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=now)
            row = await sessions.start_session(s, who.user_id, now)
        person = self._people.get(who.user_id)
        if person is not None:
            person.session_id, person.met = row.session_id, []
        return row

    async def end_session(self, who: Identity, session_id: str | None = None) -> bool:
        """End the active session; the user leaves the queue too."""
        async with self._user(who.user_id):
            await self._unqueue(who.user_id)
            async with self._db.begin() as s:
                ended = await sessions.end_sessions(s, who.user_id, self._clock.now(), session_id)
            person = self._people.get(who.user_id)
            if ended and person is not None:
                person.session_id, person.met = None, []
        return ended > 0

    # --------------------------------------------------------------------- queue

    async def join_queue(
        self, who: Identity, mode: Mode, topics: list[str] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """Wait for a partner in `mode`; starts a session when none is active."""
        async with self._user(who.user_id):
            return await self._join_queue(who, mode, topics, session_id)

    async def _join_queue(
        self, who: Identity, mode: Mode, topics: list[str] | None, session_id: str | None
    ) -> dict[str, Any]:
        now = self._clock.now()
        person = await self._person(who)
        open_match = await self._settled_match(who.user_id)
        if open_match is not None:
            raise Conflict(f"you are in match {open_match}", matchId=open_match)
        if session_id is not None and person.session_id != session_id:
            raise NotFound(f"no active session {session_id!r}; omit sessionId to start one")
        if person.session_id is None:
            # Stored with the next batch, before any match that names it.
            person.session_id, write = sessions.new_session(who.user_id, now)
            person.met = []
            self.writer.later(write)
        await self.activity.record(who.user_id, ActivityStatus.SEARCHING, now, _db_mode(mode))
        entry = Waiting(
            user_id=who.user_id,
            mode=mode,
            since=self._clock.monotonic(),
            topics=frozenset(topics) if topics else frozenset(person.topics),
            seniority=person.seniority,
            met=frozenset(person.met),
            excluded=person.excluded,
        )
        ticket = Ticket(who.user_id, person.display_name, person.session_id, mode)
        met_count = len(person.met)
        answer = {"sessionId": ticket.session_id, "previouslyMatchedCount": met_count}
        async with self._lock:
            claimed_meanwhile = self._user_match.get(who.user_id)
            if claimed_meanwhile is None:
                position = await self._queue.add(entry, ticket)
                claimed = await self._queue.claim(who.user_id, self._clock.monotonic())
                opening = await self._make_match(claimed) if claimed is not None else None
                if opening is None:
                    await self._waiting(who.user_id)
        if claimed_meanwhile is not None:
            # Someone paired this user after the check above: they are in a match now.
            settled = await self._settled_match(who.user_id)
            raise Conflict(f"you are in match {settled or claimed_meanwhile}", matchId=settled or claimed_meanwhile)
        if opening is not None:
            match_id = await self._open_match(opening)
            if match_id is not None:
                return {**answer, "queuePosition": 0, "matchId": match_id}
            async with self._lock:
                position = await self._queue.position(who.user_id) or position
                await self._waiting(who.user_id)
        return {**answer, "queuePosition": position}

    async def _waiting(self, user_id: str) -> None:
        """The user waits: tell them if no one left could be their partner; time the fallback. Under the lock."""
        excluded_count = await self._queue.exhausted(user_id)
        if excluded_count is not None:
            await self._notify.send(
                user_id, "queue:exhausted", {"message": EXHAUSTED_MESSAGE, "excludedCount": excluded_count}
            )
        await self._arm_fallback()

    async def _unqueue(self, user_id: str) -> Ticket | None:
        """Take the user out of the queue, also should a match being stored for them fail (they would wait again)."""
        while True:
            async with self._lock:
                ticket = await self._queue.remove(user_id)
                match_id = self._user_match.get(user_id)
                announcing = None if match_id is None else self._announcing.get(match_id)
            if announcing is None:
                return ticket
            await announcing.wait()

    async def _settled_match(self, user_id: str) -> str | None:
        """The user's open match once its `match:found` has gone out; None if they have none."""
        while (match_id := self._user_match.get(user_id)) is not None:
            announcing = self._announcing.get(match_id)
            if announcing is None:
                return match_id
            await announcing.wait()
        return None

    async def _person(self, who: Identity) -> _Person:
        """What a join needs to know of `who`: from memory, or read from the store once."""
        person = self._people.get(who.user_id)
        if person is not None:
            self._people.move_to_end(who.user_id)
            return person
        async with self._db.begin() as s:
            user = await users.ensure_user(
                s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=self._clock.now()
            )
            current = await sessions.active_session(s, who.user_id)
            excluded = await sessions.excluded_user_ids(s, who.user_id)
        person = _Person(
            display_name=user.display_name,
            topics=tuple(user.topics),
            seniority=seniority_rank(user.seniority),
            session_id=current.session_id if current else None,
            met=list(current.matched_user_ids) if current else [],
            excluded=frozenset(excluded),
        )
        # Another request of this user may have read it meanwhile; the first one read stays.
        person = self._people.setdefault(who.user_id, person)
        while len(self._people) > self.settings.people_kept:
            self._people.popitem(last=False)
        return person

    async def leave_queue(self, who: Identity) -> dict[str, Any]:
        """Stop waiting; `conflict` with the matchId when a match was already made."""
        async with self._user(who.user_id):
            return await self._leave_queue(who)

    async def _leave_queue(self, who: Identity) -> dict[str, Any]:
        ticket = await self._unqueue(who.user_id)
        if ticket is None:
            open_match = await self._settled_match(who.user_id)
            if open_match is not None:
                raise Conflict(f"already matched: match {open_match}", matchId=open_match)
            return {}
        await self.activity.record(who.user_id, ActivityStatus.ONLINE, self._clock.now())
        return {}

    async def refresh_exclusions(self, user_ids: list[str]) -> None:
        """Re-read whom each waiting user must not meet (a block or flag made while waiting applies at once)."""
        for user_id in user_ids:
            person = self._people.get(user_id)
            if person is None and await self._queue.ticket(user_id) is None:
                continue
            async with self._db() as s:
                excluded = frozenset(await sessions.excluded_user_ids(s, user_id))
            person = self._people.get(user_id)
            if person is not None:
                person.excluded = excluded
            async with self._lock:
                if await self._queue.ticket(user_id) is not None:
                    await self._queue.update_excluded(user_id, excluded)

    async def queue_status(self, who: Identity) -> dict[str, Any]:
        """Whether the user waits, where, and their open match if any."""
        open_match_id = await self._settled_match(who.user_id)
        person = await self._person(who)
        ticket = await self._queue.ticket(who.user_id)
        open_match = None if open_match_id is None else await self._load(open_match_id)
        answer: dict[str, Any] = {"inQueue": ticket is not None, "previouslyMatchedUsers": list(person.met)}
        if ticket is not None:
            answer["queuePosition"] = await self._queue.position(who.user_id)
        if person.session_id is not None:
            answer["sessionId"] = person.session_id
        if open_match is not None:
            answer["matchId"] = open_match.id
            answer["roomId"] = open_match.room_id
        return answer

    async def _arm_fallback(self) -> None:
        # One timer for the earliest moment the 30 s fallback could pair someone.
        when = await self._queue.next_fallback_at()
        if when is None or (self._fallback_at is not None and self._fallback_at <= when):
            return
        if self._fallback_timer is not None:
            self._fallback_timer.cancel()
        self._fallback_at = when
        self._fallback_timer = self._clock.call_later(when - self._clock.monotonic(), self._sweep)

    async def _sweep(self) -> None:
        async with self._lock:
            self._fallback_timer = None
            self._fallback_at = None
            openings = [await self._make_match(c) for c in await self._queue.claim_all(self._clock.monotonic())]
            await self._arm_fallback()
        await asyncio.gather(*(self._open_match(o) for o in openings))

    async def _make_match(self, claimed: Claimed) -> _Opening:
        """Claim a pairing for a new match and start writing it. Under the lock.

        Both people count as matched from here on (no other join can pair them); the match is
        announced by `_open_match`, after its row is stored and outside the lock, so the rows
        of many pairings made meanwhile share one commit.
        """
        pairing, first, second = claimed.pairing, claimed.first, claimed.second
        now = self._clock.now()
        mode = _db_mode(first.mode)
        state, inserted = matches.new_match(
            match_id=new_id(),
            user1_id=first.user_id,
            user2_id=second.user_id,
            user1_session_id=first.session_id,
            user2_session_id=second.session_id,
            mode=mode,
            matched_topics=list(pairing.matched_topics),
            room_id=new_id(),
            now=now,
        )
        met = {
            first.session_id: await self._met_after(first, second.user_id),
            second.session_id: await self._met_after(second, first.user_id),
        }
        stored = self.writer.submit(inserted, *(sessions.set_met(sid, ids, now) for sid, ids in met.items()))
        self._user_match[first.user_id] = self._user_match[second.user_id] = state.id
        self._announcing[state.id] = asyncio.Event()
        return _Opening(claimed, state, met, stored)

    async def _open_match(self, opening: _Opening) -> str | None:
        """Once the match is stored, tell both people; if it could not be, they wait again."""
        state, (first, second) = opening.state, (opening.claimed.first, opening.claimed.second)
        await asyncio.wait([opening.stored])
        try:
            if opening.stored.exception() is not None:
                log.error("could not store a match; both wait again", error=repr(opening.stored.exception()))
                await self._requeue(opening)
                return None
            for ticket in (first, second):
                person = self._people.get(ticket.user_id)
                if person is not None and person.session_id == ticket.session_id:
                    person.met = opening.met[ticket.session_id]
                await self.activity.record(ticket.user_id, ActivityStatus.IN_CALL, state.matched_at, CallMode(state.mode))
            self._open[state.id] = state
            names = {first.user_id: first.display_name, second.user_id: second.display_name}
            await self._announce(state, names)
            self._join_timers[state.id] = self._clock.call_later(
                self.settings.join_timeout, lambda: self._join_timeout(state.id)
            )
        finally:
            self._announcing.pop(state.id).set()
        log.info("match found", match_id=state.id, reason=opening.claimed.pairing.reason, mode=state.mode)
        return state.id

    async def _requeue(self, opening: _Opening) -> None:
        """Both people of a match that could not be stored wait again, as they were."""
        claimed = opening.claimed
        async with self._lock:
            for ticket in (claimed.first, claimed.second):
                del self._user_match[ticket.user_id]
            await self._queue.add(claimed.pairing.first, claimed.first)
            await self._queue.add(claimed.pairing.second, claimed.second)
            await self._arm_fallback()

    async def _met_after(self, ticket: Ticket, other_user_id: str) -> list[str]:
        """The matchedUserIds of the ticket's session once `other_user_id` is added."""
        person = self._people.get(ticket.user_id)
        if person is not None and person.session_id == ticket.session_id:
            met = person.met
        else:
            async with self._db() as s:
                row = await sessions.by_session_id(s, ticket.session_id)
            met = list(row.matched_user_ids) if row is not None else []
        return met if other_user_id in met else [*met, other_user_id]

    async def _announce(self, state: MatchState, names: dict[str, str] | None = None) -> None:
        """Send `match:found` to both people (again, on a resume)."""
        if names is None:
            async with self._db() as s:
                names = {}
                for user_id in (state.user1_id, state.user2_id):
                    user = await users.get_user(s, user_id)
                    names[user_id] = user.display_name if user else user_id
        for user_id in (state.user1_id, state.user2_id):
            partner = state.partner_of(user_id)
            await self._notify.send(user_id, "match:found", {
                "matchId": state.id,
                "roomId": state.room_id,
                "mode": state.mode.lower(),
                "initiator": user_id == state.user1_id,
                "partner": {"id": partner, "displayName": names[partner]},
                "matchedTopics": list(state.matched_topics),
                "iceServers": ice_servers_for(self.settings.ice, user_id, time.time()),
                "media": "direct",
                "startedAt": iso(state.started_at),
            })

    # -------------------------------------------------------------------- matches

    async def _load(self, match_id: str) -> MatchState:
        cached = self._open.get(match_id)
        if cached is not None:
            return cached
        async with self._db() as s:
            state = await matches.load(s, match_id)
        if state is None:
            raise NotFound(f"no match {match_id!r}")
        if state.is_open:
            self._open[match_id] = state
        return state

    async def _transition(
        self, match_id: str, change: Callable[[MatchState], MatchState]
    ) -> tuple[MatchState, MatchState]:
        """Apply `change` with compare-and-set, retrying when someone else changed the match first."""
        for attempt in range(5):
            # This process changes a match only under its lock, so the copy in memory is current;
            # the compare-and-set still catches any other writer, and the store is read then.
            before = self._open.get(match_id) if attempt == 0 else None
            if before is None:
                async with self._db() as s:
                    before = await matches.load(s, match_id)
            if before is None:
                raise NotFound(f"no match {match_id!r}")
            after = change(before)
            if after == before:
                return before, after
            [stored] = await self.writer.commit(matches.transition(before, after, self._clock.now()))
            if stored:
                if after.is_open:
                    self._open[match_id] = after
                else:
                    self._open.pop(match_id, None)
                return before, after
        raise Conflict(f"match {match_id} is changing too fast; try again", matchId=match_id)

    async def join_match(self, who: Identity, match_id: str) -> dict[str, Any]:
        """Record this user's join; the second join starts the call."""
        started: list[bool] = []

        def apply(state: MatchState) -> MatchState:
            new, did_start = join(state, who.user_id, self._clock.now())
            started[:] = [did_start]
            return new

        async with self._match_lock(match_id):
            _, after = await self._transition(match_id, apply)
            if started and started[0]:
                timer = self._join_timers.pop(match_id, None)
                if timer is not None:
                    timer.cancel()
                payload = {"matchId": match_id, "startedAt": iso(after.started_at)}
                for user_id in (after.user1_id, after.user2_id):
                    await self._notify.send(user_id, "match:started", payload)
        return {}

    def _match_lock(self, match_id: str) -> asyncio.Lock:
        return self._match_locks.setdefault(match_id, asyncio.Lock())

    async def end_match(self, who: Identity, match_id: str, *, skip: bool = False) -> dict[str, Any]:
        """End the match as ENDED (or SKIPPED); both people get `match:ended`."""
        state = await self._load(match_id)
        state.partner_of(who.user_id)  # not_found for strangers, before anything changes
        await self._end(match_id, who.user_id, Status.SKIPPED if skip else Status.ENDED)
        return {}

    async def _end(self, match_id: str, ended_by: str | None, status: Status) -> MatchState:
        async with self._match_lock(match_id):
            now = self._clock.now()
            _, after = await self._transition(match_id, lambda st: end(st, status=status, ended_by=ended_by, now=now))
            timer = self._join_timers.pop(match_id, None)
            if timer is not None:
                timer.cancel()
            payload = {
                "matchId": match_id,
                "status": after.status.value,
                "endedBy": after.ended_by,
                "endedAt": iso(after.ended_at),
                "duration": after.duration,
            }
            for user_id in (after.user1_id, after.user2_id):
                await self._notify.send(user_id, "match:ended", payload)
        # Closed for good: later arrivals find it ended whichever lock they take.
        self._match_locks.pop(match_id, None)
        for user_id in (after.user1_id, after.user2_id):
            if self._user_match.get(user_id) == match_id:
                del self._user_match[user_id]
        for user_id in (after.user1_id, after.user2_id):
            await self.activity.record(user_id, ActivityStatus.ONLINE, now)
        return after

    async def _join_timeout(self, match_id: str) -> None:
        self._join_timers.pop(match_id, None)
        try:
            await self._end(match_id, None, Status.TIMEOUT)
        except (Conflict, NotFound):
            pass  # joined, ended or skipped meanwhile

    # --------------------------------------------------------- relay and chat

    async def relay_signal(self, who: Identity, match_id: str, kind: str, data: Any) -> dict[str, Any]:
        """Pass offer/answer/candidate data, untouched, to the partner of an open match."""
        if kind not in SIGNAL_KINDS:
            raise Invalid("kind must be offer, answer or candidate")
        state = await self._load(match_id)
        partner = require_open(state, who.user_id)
        await self._notify.send(partner, "signal", {"matchId": match_id, "from": who.user_id, "kind": kind, "data": data})
        return {}

    async def send_chat(self, who: Identity, match_id: str, text: str) -> dict[str, Any]:
        """Store a chat message of an open match and deliver it to the partner."""
        if len(text) > self.settings.chat_max_chars:
            raise TooLarge(f"a chat message is at most {self.settings.chat_max_chars} characters")
        if not text.strip():
            raise Invalid("a chat message cannot be empty")
        state = await self._load(match_id)
        partner = require_open(state, who.user_id)
        if not await self._chat_limiter.hit(self._chat_rate, who.user_id):
            stats = await self._chat_limiter.get_window_stats(self._chat_rate, who.user_id)
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(f"too many messages; try again in {retry} s", retry_after=retry)
        now = self._clock.now()
        message_id, write = chat.new_message(match_id=match_id, sender_id=who.user_id, text=text, now=now)
        await self.writer.commit(write)  # stored before anyone sees it
        sent_at = iso(now)
        await self._notify.send(partner, "chat:message", {
            "matchId": match_id, "id": message_id, "from": who.user_id, "text": text, "sentAt": sent_at,
        })
        return {"message": {"id": message_id, "sentAt": sent_at}}

    async def typing(self, who: Identity, match_id: str, typing: bool) -> dict[str, Any]:
        """Tell the partner whether this user is typing."""
        state = await self._load(match_id)
        partner = require_open(state, who.user_id)
        await self._notify.send(partner, "chat:typing", {"matchId": match_id, "from": who.user_id, "typing": typing})
        return {}

    # ------------------------------------------------------------ start and stop

    async def close(self) -> None:
        """Cancel every timer; open matches are closed by the caller's shutdown."""
        timers: list[Timer | None] = [*self._join_timers.values(), *self._grace_timers.values(), self._fallback_timer]
        for timer in timers:
            if timer is not None:
                timer.cancel()
        self._join_timers.clear()
        self._grace_timers.clear()
        self._fallback_timer = None
        await self.writer.close()

