"""The matching policy: who waiting in the queue is paired with whom.

Pure Python, no I/O, no clock: every method that depends on time takes
``now`` (seconds on the caller's monotonic clock), so the policy is
deterministic and testable.

Rules (product spec)
--------------------
* Only users of the same mode (video/text) match.
* A pair is *eligible* unless it is the same user, or either side has the
  other in ``met`` (met in this session) or ``excluded`` (blocked/flagged).
* Preference among eligible candidates: most shared topics, then closest
  seniority (a missing rank counts as farthest), then longest wait
  (earliest ``since``), then user id.
* A candidate is *acceptable* if topics overlap, or both ranks are within
  ``seniority_window``, or either side has waited ``fallback_after`` seconds.
  The best acceptable candidate by the preference order wins.

Index and complexity
--------------------
Per mode the pool keeps lists of ``(since, user_id)`` keys sorted with
``bisect`` (wait order): one for the whole mode, one per seniority rank, and
one per (topic subset, rank). Every waiter with at most
``max_indexed_topics`` (D, default 4) topics is filed under each non-empty
subset of its topics (at most 2**D - 1 = 15 buckets), so "who shares at least
these k topics" is one dict lookup and the best of a bucket is its first
eligible key. Waiters with more topics ("wide") are kept in a per-mode set
and in plain ``topic -> ids`` sets instead.

Let m be the querier's topic count, R the distinct ranks present (7 here),
W the wide waiters of the mode and X the querier's skip bound: its own
``met``/``excluded`` plus the waiters that have it in theirs (kept in a
reverse index). Ineligible keys are only ever skipped at the head of a
bucket, so each costs O(1) and X bounds the skipping per bucket.

* ``best_partner``/``match``: O(2**m * R + X * 2**m + W) for m <= D,
  independent of the pool size n. A wide querier (m > D) counts overlaps over
  its topic buckets instead, O(sum of those bucket sizes): the only path that
  grows with n. The seniority/fallback step is O(R + X).
* ``add``/``remove``/``update``: O(2**min(m, D)) bucket updates, each a
  bisect plus a list memmove (O(n) bytes moved, microseconds at 10**5;
  arrivals in clock order are appends).
* ``excluded_count``/``is_exhausted``: O(X). ``position``: O(log n).
  ``next_fallback_at``: O(1). ``sweep``: one ``match`` per waiter that is
  new, changed, or newly past ``fallback_after``; waiters already known to
  have no acceptable partner are not re-examined.
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, Final, Literal

__all__ = ["Mode", "Pairing", "Reason", "Waiting", "WaitingPool"]

Reason = Literal["topics", "seniority", "fallback"]

# Distance used when either side has no seniority rank: farther than any real one.
_FARTHEST: Final = math.inf

# (since, user_id): the wait order, earliest first; user id breaks ties deterministically.
_Key = tuple[float, str]


class Mode(str, enum.Enum):
    """Call mode; each mode is a separate queue."""

    VIDEO = "video"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Waiting:
    """One user waiting to be matched. Collections are normalised to frozensets."""

    user_id: str
    mode: Mode
    since: float  # when this user started waiting (injected clock)
    topics: frozenset[str] = frozenset()
    seniority: int | None = None  # rank, e.g. 0=intern .. 5=principal
    met: frozenset[str] = frozenset()  # met in the current session
    excluded: frozenset[str] = frozenset()  # blocked/flagged, either direction as known here

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError("user_id must be a non-empty string")
        object.__setattr__(self, "mode", Mode(self.mode))
        since = float(self.since)
        # A NaN or infinite time would break the sorted wait order.
        if not math.isfinite(since):
            raise ValueError(f"since must be finite, got {self.since!r}")
        object.__setattr__(self, "since", since)
        for name in ("topics", "met", "excluded"):
            value = getattr(self, name)
            if isinstance(value, str):
                # frozenset("ab") would silently become {"a", "b"}.
                raise TypeError(f"{name} must be a collection of strings, not a string")
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        rank = self.seniority
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
            raise TypeError(f"seniority must be an int or None, got {rank!r}")


@dataclass(frozen=True, slots=True)
class Pairing:
    """A decided pair."""

    first: Waiting  # waited longer; becomes the WebRTC initiator
    second: Waiting
    matched_topics: tuple[str, ...]  # shared topics, sorted
    reason: Reason  # why the pair is acceptable: "topics" | "seniority" | "fallback"

    @property
    def user_ids(self) -> tuple[str, str]:
        """Both user ids, initiator first."""
        return (self.first.user_id, self.second.user_id)


@dataclass(slots=True)
class _Record:
    """Pool-side bookkeeping for one waiter."""

    entry: Waiting
    key: _Key
    # subsets[k - 1] holds the k-topic subsets; empty for wide waiters.
    subsets: tuple[tuple[frozenset[str], ...], ...]
    wide: bool
    # True until a match attempt at or after the fallback deadline found nobody;
    # such a waiter needs no timer, only new or changed waiters can pair with it.
    pending: bool = True


@dataclass(slots=True)
class _ModeIndex:
    """All indexes for one mode's queue."""

    order: list[_Key] = field(default_factory=list)
    by_rank: dict[int | None, list[_Key]] = field(default_factory=dict)
    by_subset: dict[frozenset[str], dict[int | None, list[_Key]]] = field(default_factory=dict)
    by_topic: dict[str, set[str]] = field(default_factory=dict)
    wide: set[str] = field(default_factory=set)


def _discard(keys: list[_Key], key: _Key) -> None:
    """Remove ``key`` from a sorted key list if present."""
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]


def _first_eligible(keys: list[_Key], blocked: set[str]) -> _Key | None:
    """Earliest key whose user is not blocked; skips at most len(blocked) keys."""
    for key in keys:
        if key[1] not in blocked:
            return key
    return None


def _distance(a: int | None, b: int | None) -> float:
    """Seniority distance; a missing rank is farthest."""
    if a is None or b is None:
        return _FARTHEST
    return abs(a - b)


_UNSET: Any = object()


class WaitingPool:
    """Users waiting for a call, indexed so that finding a partner does not scan the queue."""

    def __init__(
        self,
        *,
        fallback_after: float = 30.0,
        seniority_window: int = 1,
        max_indexed_topics: int = 4,
    ) -> None:
        if not math.isfinite(fallback_after) or fallback_after < 0:
            raise ValueError("fallback_after must be a finite number >= 0")
        if seniority_window < 0:
            raise ValueError("seniority_window must be >= 0")
        if max_indexed_topics < 0:
            raise ValueError("max_indexed_topics must be >= 0")
        self.fallback_after = float(fallback_after)
        self.seniority_window = seniority_window
        self.max_indexed_topics = max_indexed_topics
        self._records: dict[str, _Record] = {}
        self._modes: dict[Mode, _ModeIndex] = {mode: _ModeIndex() for mode in Mode}
        # target id -> waiting ids whose met/excluded name it: makes "B blocked A" an O(1)
        # check from A's side and bounds the skipping in _first_eligible.
        self._excluded_by: dict[str, set[str]] = {}
        # Keys of records with pending=True, in wait order: the fallback timer's agenda.
        self._pending: list[_Key] = []
        # Waiters added/updated and not examined since: sweep() must look at them.
        self._dirty: set[str] = set()

    # ----------------------------------------------------------------- container

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, user_id: str) -> Waiting | None:
        """The waiting entry for ``user_id``, or None."""
        rec = self._records.get(user_id)
        return rec.entry if rec is not None else None

    def waiting_count(self, mode: Mode) -> int:
        """How many users wait in ``mode``."""
        return len(self._modes[Mode(mode)].order)

    def position(self, user_id: str) -> int | None:
        """1-based place among same-mode waiters by wait time; None if not waiting."""
        rec = self._records.get(user_id)
        if rec is None:
            return None
        return bisect_left(self._modes[rec.entry.mode].order, rec.key) + 1

    # ------------------------------------------------------------------ mutation

    def add(self, entry: Waiting) -> None:
        """Start waiting. Raises ValueError if the user already waits."""
        if entry.user_id in self._records:
            raise ValueError(f"user {entry.user_id!r} is already waiting")
        self._index(entry)

    def remove(self, user_id: str) -> Waiting | None:
        """Stop waiting; returns the entry, or None if the user was not waiting."""
        rec = self._records.get(user_id)
        if rec is None:
            return None
        self._unindex(rec)
        return rec.entry

    def update(
        self,
        user_id: str,
        *,
        topics: Iterable[str] | None = None,
        seniority: int | None = _UNSET,
        met: Iterable[str] | None = None,
        excluded: Iterable[str] | None = None,
    ) -> Waiting:
        """Replace a waiter's attributes, keeping ``since`` and mode. KeyError if not waiting."""
        rec = self._records[user_id]
        changes: dict[str, Any] = {}
        if topics is not None:
            changes["topics"] = frozenset(topics)
        if seniority is not _UNSET:
            changes["seniority"] = seniority
        if met is not None:
            changes["met"] = frozenset(met)
        if excluded is not None:
            changes["excluded"] = frozenset(excluded)
        new = replace(rec.entry, **changes)
        self._unindex(rec)
        self._index(new)
        return new

    def match(self, user_id: str, now: float) -> Pairing | None:
        """Pair ``user_id`` with its best acceptable partner and remove both; None if none."""
        rec = self._records.get(user_id)
        if rec is None:
            return None
        partner = self._best_id(rec, now)
        self._dirty.discard(user_id)
        if partner is None:
            if rec.pending and now - rec.entry.since >= self.fallback_after:
                # Past the deadline every eligible waiter was acceptable and none exists:
                # only a new or changed waiter can change that, so drop it from the timer.
                rec.pending = False
                _discard(self._pending, rec.key)
            return None
        other = self._records[partner]
        pairing = self._pairing(rec.entry, other.entry)
        self._unindex(rec)
        self._unindex(other)
        return pairing

    def sweep(self, now: float) -> list[Pairing]:
        """Match everyone who can be matched now, longest-waiting first.

        Examines waiters that reached ``fallback_after`` and waiters added or
        updated since they were last examined. Others were found to have no
        acceptable partner and nothing that could change that has happened, so
        afterwards no acceptable pair is left in the pool.
        """
        due: set[_Key] = set()
        for key in self._pending:
            if now - key[0] < self.fallback_after:
                break
            due.add(key)
        due.update(self._records[uid].key for uid in self._dirty)
        pairings: list[Pairing] = []
        for key in sorted(due):
            if key[1] in self._records:  # may already be someone's partner
                pairing = self.match(key[1], now)
                if pairing is not None:
                    pairings.append(pairing)
        return pairings

    # -------------------------------------------------------------------- lookup

    def best_partner(self, user_id: str, now: float) -> Pairing | None:
        """The pairing ``match`` would make, without changing the pool."""
        rec = self._records.get(user_id)
        if rec is None:
            return None
        partner = self._best_id(rec, now)
        if partner is None:
            return None
        return self._pairing(rec.entry, self._records[partner].entry)

    def excluded_count(self, user_id: str) -> int:
        """Same-mode waiters excluded for this user (met or blocked, either direction)."""
        rec = self._records.get(user_id)
        if rec is None:
            return 0
        u = rec.entry
        count = 0
        for other in self._blocked(u):
            other_rec = self._records.get(other)
            if other != u.user_id and other_rec is not None and other_rec.entry.mode is u.mode:
                count += 1
        return count

    def is_exhausted(self, user_id: str) -> bool:
        """True if others wait in this user's mode and every one of them is excluded."""
        rec = self._records.get(user_id)
        if rec is None:
            return False
        others = self.waiting_count(rec.entry.mode) - 1
        return others > 0 and self.excluded_count(user_id) == others

    def next_fallback_at(self) -> float | None:
        """Earliest time a waiter reaches ``fallback_after`` and needs a sweep; None if none will.

        Waiters that already passed the deadline and were found to have no
        partner are left out (new arrivals will find them), so a timer armed on
        this value never spins. The value may lie in the past when a waiter
        passed its deadline without a match attempt; sweep immediately then.
        """
        if not self._pending:
            return None
        since = self._pending[0][0]
        at = since + self.fallback_after
        # Rounding may make at - since fall short of fallback_after; the timer must land
        # at a time where sweep() sees the deadline as reached.
        while at - since < self.fallback_after:
            at = math.nextafter(at, math.inf)
        return at

    # ----------------------------------------------------------------- internals

    def _index(self, entry: Waiting) -> None:
        key: _Key = (entry.since, entry.user_id)
        idx = self._modes[entry.mode]
        topics = sorted(entry.topics)
        wide = len(topics) > self.max_indexed_topics
        subsets: tuple[tuple[frozenset[str], ...], ...] = ()
        if not wide:
            subsets = tuple(
                tuple(frozenset(c) for c in combinations(topics, size))
                for size in range(1, len(topics) + 1)
            )
        rec = _Record(entry=entry, key=key, subsets=subsets, wide=wide)
        self._records[entry.user_id] = rec

        insort(idx.order, key)
        insort(idx.by_rank.setdefault(entry.seniority, []), key)
        for topic in topics:
            idx.by_topic.setdefault(topic, set()).add(entry.user_id)
        if wide:
            idx.wide.add(entry.user_id)
        for level in subsets:
            for subset in level:
                insort(idx.by_subset.setdefault(subset, {}).setdefault(entry.seniority, []), key)
        for target in entry.met | entry.excluded:
            self._excluded_by.setdefault(target, set()).add(entry.user_id)
        insort(self._pending, key)
        self._dirty.add(entry.user_id)

    def _unindex(self, rec: _Record) -> None:
        entry, key = rec.entry, rec.key
        idx = self._modes[entry.mode]
        del self._records[entry.user_id]

        _discard(idx.order, key)
        rank_keys = idx.by_rank[entry.seniority]
        _discard(rank_keys, key)
        if not rank_keys:
            del idx.by_rank[entry.seniority]
        for topic in entry.topics:
            ids = idx.by_topic[topic]
            ids.discard(entry.user_id)
            if not ids:
                del idx.by_topic[topic]
        idx.wide.discard(entry.user_id)
        # Empty buckets are dropped so dict sizes follow the live pool, not its history.
        for level in rec.subsets:
            for subset in level:
                buckets = idx.by_subset[subset]
                keys = buckets[entry.seniority]
                _discard(keys, key)
                if not keys:
                    del buckets[entry.seniority]
                    if not buckets:
                        del idx.by_subset[subset]
        for target in entry.met | entry.excluded:
            ids = self._excluded_by[target]
            ids.discard(entry.user_id)
            if not ids:
                del self._excluded_by[target]
        if rec.pending:
            _discard(self._pending, key)
        self._dirty.discard(entry.user_id)

    def _blocked(self, u: Waiting) -> set[str]:
        """Ids that can never pair with ``u``: itself, its met/excluded, and who excluded it."""
        blocked = set(u.met)
        blocked |= u.excluded
        reverse = self._excluded_by.get(u.user_id)
        if reverse:
            blocked |= reverse
        blocked.add(u.user_id)
        return blocked

    def _best_id(self, rec: _Record, now: float) -> str | None:
        """User id of the best acceptable partner for ``rec``, or None."""
        u = rec.entry
        idx = self._modes[u.mode]
        blocked = self._blocked(u)
        # Any topic overlap is acceptable and outranks every non-overlapping candidate,
        # so if one exists the seniority/fallback rules never come into play.
        if u.topics:
            found = (
                self._best_by_counting(u, idx, blocked)
                if rec.wide
                else self._best_by_subsets(rec, idx, blocked)
            )
            if found is not None:
                return found
        # From here every eligible candidate shares no topic.
        return self._best_without_topics(u, idx, blocked, now)

    def _best_by_subsets(self, rec: _Record, idx: _ModeIndex, blocked: set[str]) -> str | None:
        """Best eligible candidate sharing a topic, for a querier with <= D topics."""
        u = rec.entry
        rank = u.seniority
        best: tuple[float, float, float, str] | None = None  # (-overlap, distance, since, id)
        # Wide candidates are not in the subset buckets: score them directly (few expected).
        for cid in idx.wide:
            if cid in blocked:
                continue
            c = self._records[cid].entry
            overlap = len(u.topics & c.topics)
            if overlap:
                cand = (-overlap, _distance(rank, c.seniority), c.since, cid)
                if best is None or cand < best:
                    best = cand
        floor = max(1, -int(best[0])) if best is not None else 1
        # Try "shares these k topics" for k from all of them down. The first level with an
        # eligible narrow candidate holds the narrow optimum: anyone eligible sharing more
        # would sit in a bucket of a higher level.
        for size in range(len(rec.subsets), floor - 1, -1):
            level_best: tuple[float, float, float, str] | None = None
            for subset in rec.subsets[size - 1]:
                buckets = idx.by_subset.get(subset)
                if buckets is None:
                    continue
                for cand_rank, keys in buckets.items():
                    key = _first_eligible(keys, blocked)
                    if key is not None:
                        cand = (-size, _distance(rank, cand_rank), key[0], key[1])
                        if level_best is None or cand < level_best:
                            level_best = cand
            if level_best is not None:
                if best is None or level_best < best:
                    best = level_best
                break
        return best[3] if best is not None else None

    def _best_by_counting(self, u: Waiting, idx: _ModeIndex, blocked: set[str]) -> str | None:
        """Best eligible candidate sharing a topic, for a wide querier: count over its buckets."""
        counts: Counter[str] = Counter()
        for topic in u.topics:
            ids = idx.by_topic.get(topic)
            if ids:
                counts.update(ids)  # C-level counting loop
        best: tuple[float, float, float, str] | None = None
        for cid, overlap in counts.items():
            if cid in blocked or (best is not None and -overlap > best[0]):
                continue
            c = self._records[cid].entry
            cand = (-overlap, _distance(u.seniority, c.seniority), c.since, cid)
            if best is None or cand < best:
                best = cand
        return best[3] if best is not None else None

    def _best_without_topics(
        self, u: Waiting, idx: _ModeIndex, blocked: set[str], now: float
    ) -> str | None:
        """Best acceptable candidate when no eligible one shares a topic."""
        fallback = self.fallback_after
        rank = u.seniority

        def best_of(ranks: Iterable[tuple[int | None, list[_Key]]], old_only: bool) -> str | None:
            best: tuple[float, float, str] | None = None  # (distance, since, id)
            for cand_rank, keys in ranks:
                key = _first_eligible(keys, blocked)
                # The first eligible key is the longest waiter of its rank: if it has not
                # reached the fallback, nobody later in that rank has.
                if key is None or (old_only and now - key[0] < fallback):
                    continue
                cand = (_distance(rank, cand_rank), key[0], key[1])
                if best is None or cand < best:
                    best = cand
            return best[2] if best is not None else None

        if now - u.since >= fallback:
            return best_of(idx.by_rank.items(), old_only=False)
        # Candidates within the window outrank any outside it, so they go first.
        if rank is not None:
            window = self.seniority_window
            near = [
                (r, keys)
                for r, keys in idx.by_rank.items()
                if r is not None and abs(r - rank) <= window
            ]
            found = best_of(near, old_only=False)
            if found is not None:
                return found
        return best_of(idx.by_rank.items(), old_only=True)

    def _pairing(self, a: Waiting, b: Waiting) -> Pairing:
        shared = a.topics & b.topics
        reason: Reason
        if shared:
            reason = "topics"
        elif (
            a.seniority is not None
            and b.seniority is not None
            and abs(a.seniority - b.seniority) <= self.seniority_window
        ):
            reason = "seniority"
        else:
            reason = "fallback"
        if (b.since, b.user_id) < (a.since, a.user_id):
            a, b = b, a
        return Pairing(first=a, second=b, matched_topics=tuple(sorted(shared)), reason=reason)
