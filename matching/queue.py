"""The waiting queue behind a small async interface; the in-process implementation for now.

Each operation is atomic: a pairing removes both people in the same step that chooses them,
so nobody can be handed to two matches. A Redis implementation (several server processes)
will keep the same operations with an atomic claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .policy import Mode, Pairing, Waiting, WaitingPool


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the server needs of a waiter besides what the policy scores."""

    user_id: str
    display_name: str
    session_id: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class Claimed:
    """A pairing taken off the queue, with both tickets; `first` is the initiator."""

    pairing: Pairing
    first: Ticket
    second: Ticket


class MatchQueue(Protocol):
    """The queue's operations; every one is atomic."""

    async def add(self, entry: Waiting, ticket: Ticket) -> int: ...

    async def remove(self, user_id: str) -> Ticket | None: ...

    async def ticket(self, user_id: str) -> Ticket | None: ...

    async def position(self, user_id: str) -> int | None: ...

    async def claim(self, user_id: str, now: float) -> Claimed | None: ...

    async def claim_all(self, now: float) -> list[Claimed]: ...

    async def exhausted(self, user_id: str) -> int | None: ...

    async def update_excluded(self, user_id: str, excluded: frozenset[str]) -> None: ...

    async def next_fallback_at(self) -> float | None: ...


class LocalQueue:
    """The in-process queue: a `WaitingPool` plus tickets. No await inside an operation."""

    def __init__(self, pool: WaitingPool | None = None) -> None:
        self._pool = pool or WaitingPool()
        self._tickets: dict[str, Ticket] = {}

    async def add(self, entry: Waiting, ticket: Ticket) -> int:
        """Start waiting (replacing an earlier wait of the same user); returns the 1-based position."""
        if entry.user_id in self._pool:
            self._pool.remove(entry.user_id)
        self._pool.add(entry)
        self._tickets[entry.user_id] = ticket
        position = self._pool.position(entry.user_id)
        assert position is not None
        return position

    async def remove(self, user_id: str) -> Ticket | None:
        """Stop waiting; the ticket, or None if the user was not waiting."""
        self._pool.remove(user_id)
        return self._tickets.pop(user_id, None)

    async def ticket(self, user_id: str) -> Ticket | None:
        """The waiter's ticket, or None."""
        return self._tickets.get(user_id)

    async def position(self, user_id: str) -> int | None:
        """1-based place among same-mode waiters; None if not waiting."""
        return self._pool.position(user_id)

    async def claim(self, user_id: str, now: float) -> Claimed | None:
        """Pair `user_id` with the best acceptable partner, taking both off the queue."""
        pairing = self._pool.match(user_id, now)
        return None if pairing is None else self._claimed(pairing)

    async def claim_all(self, now: float) -> list[Claimed]:
        """Every pair that can be made now (the 30 s fallback makes more acceptable as time passes)."""
        return [self._claimed(p) for p in self._pool.sweep(now)]

    async def exhausted(self, user_id: str) -> int | None:
        """How many waiters are excluded for this user, when all of them are; else None."""
        if not self._pool.is_exhausted(user_id):
            return None
        return self._pool.excluded_count(user_id)

    async def update_excluded(self, user_id: str, excluded: frozenset[str]) -> None:
        """Replace a waiter's blocked/flagged set (a block made while waiting applies at once)."""
        if user_id in self._pool:
            self._pool.update(user_id, excluded=excluded)

    async def next_fallback_at(self) -> float | None:
        """When a sweep could next pair someone because of the fallback; None if never."""
        return self._pool.next_fallback_at()

    def _claimed(self, pairing: Pairing) -> Claimed:
        first = self._tickets.pop(pairing.first.user_id)
        second = self._tickets.pop(pairing.second.user_id)
        return Claimed(pairing, first, second)
