"""Tests for the pure matching policy (matching/policy.py)."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching import policy
from matching.policy import Mode, Pairing, Waiting, WaitingPool

V, T = Mode.VIDEO, Mode.TEXT


def w(
    uid: str,
    since: float = 0.0,
    *,
    mode: Mode = V,
    topics: tuple[str, ...] = (),
    rank: int | None = None,
    met: tuple[str, ...] = (),
    excluded: tuple[str, ...] = (),
) -> Waiting:
    return Waiting(
        user_id=uid,
        mode=mode,
        since=since,
        topics=frozenset(topics),
        seniority=rank,
        met=frozenset(met),
        excluded=frozenset(excluded),
    )


def pool_of(*entries: Waiting, **kwargs: float) -> WaitingPool:
    pool = WaitingPool(**kwargs)  # type: ignore[arg-type]
    for entry in entries:
        pool.add(entry)
    return pool


def partner(pairing: Pairing | None, uid: str) -> str | None:
    if pairing is None:
        return None
    ids = pairing.user_ids
    assert uid in ids
    return ids[1] if ids[0] == uid else ids[0]


# --------------------------------------------------------------------------- eligibility


def test_same_mode_only() -> None:
    pool = pool_of(w("a", 0, mode=V, topics=("go",)), w("b", 1, mode=T, topics=("go",)))
    assert pool.best_partner("a", now=100) is None
    assert pool.best_partner("b", now=100) is None
    pool.add(w("c", 2, mode=T, topics=("go",)))
    assert partner(pool.best_partner("b", now=2), "b") == "c"
    assert pool.waiting_count(V) == 1
    assert pool.waiting_count(T) == 2


def test_self_is_never_a_partner() -> None:
    pool = pool_of(w("a", 0, topics=("go",), rank=2))
    # Past the fallback anyone of the same mode would do, but there is only "a" itself.
    assert pool.best_partner("a", now=1000) is None
    assert pool.match("a", now=1000) is None
    assert "a" in pool


@pytest.mark.parametrize("direction", ["a_met_b", "b_met_a"])
def test_met_excludes_both_ways(direction: str) -> None:
    a = w("a", 0, topics=("go",), met=("b",) if direction == "a_met_b" else ())
    b = w("b", 1, topics=("go",), met=("a",) if direction == "b_met_a" else ())
    pool = pool_of(a, b)
    assert pool.best_partner("a", now=1000) is None
    assert pool.best_partner("b", now=1000) is None
    pool.add(w("c", 2, topics=("go",)))
    assert partner(pool.best_partner("a", now=2), "a") == "c"
    assert partner(pool.best_partner("b", now=2), "b") == "c"


@pytest.mark.parametrize("direction", ["a_blocked_b", "b_blocked_a"])
def test_excluded_both_ways(direction: str) -> None:
    a = w("a", 0, rank=3, excluded=("b",) if direction == "a_blocked_b" else ())
    b = w("b", 1, rank=3, excluded=("a",) if direction == "b_blocked_a" else ())
    pool = pool_of(a, b)
    assert pool.best_partner("a", now=1000) is None
    assert pool.best_partner("b", now=1000) is None


def test_oldest_waiters_all_excluded_are_skipped() -> None:
    met = tuple(f"old{i}" for i in range(200))
    pool = pool_of(*(w(f"old{i}", i, rank=1) for i in range(200)))
    pool.add(w("new_ok", 500, rank=4))
    pool.add(w("me", 600, rank=1, met=met))
    # Every closer-ranked, longer-waiting user is excluded; fallback allows anyone else.
    assert partner(pool.best_partner("me", now=1000), "me") == "new_ok"
    assert pool.excluded_count("me") == 200


# --------------------------------------------------------------------------- preference


def test_topic_overlap_beats_seniority() -> None:
    pool = pool_of(
        w("same_rank", 0, topics=("rust",), rank=3),
        w("shares_topic", 5, topics=("go", "k8s"), rank=0),
        w("me", 10, topics=("go",), rank=3),
    )
    p = pool.best_partner("me", now=10)
    assert partner(p, "me") == "shares_topic"
    assert p is not None and p.reason == "topics"


def test_largest_overlap_wins() -> None:
    pool = pool_of(
        w("one", 0, topics=("go", "x"), rank=3),
        w("three", 9, topics=("go", "k8s", "rust", "y"), rank=0),
        w("two", 1, topics=("go", "k8s"), rank=3),
        w("me", 10, topics=("go", "k8s", "rust"), rank=3),
    )
    p = pool.best_partner("me", now=10)
    assert partner(p, "me") == "three"
    assert p is not None and p.matched_topics == ("go", "k8s", "rust")


def test_largest_overlap_wins_for_wide_users_too() -> None:
    # With max_indexed_topics=1 everyone with 2+ topics takes the unindexed ("wide") paths.
    pool = pool_of(
        w("one", 0, topics=("go",), rank=3),
        w("two", 1, topics=("go", "k8s", "z"), rank=3),
        w("three", 9, topics=("go", "k8s", "rust", "y"), rank=0),
        max_indexed_topics=1,
    )
    pool.add(w("me", 10, topics=("go", "k8s", "rust")))
    assert partner(pool.best_partner("me", now=10), "me") == "three"
    pool.add(w("narrow", 11, topics=("k8s",)))
    # A narrow querier must still see wide candidates: "two" shares k8s and waited longest.
    assert partner(pool.best_partner("narrow", now=11), "narrow") == "two"
    pool.remove("two")
    assert partner(pool.best_partner("narrow", now=11), "narrow") == "three"
    pool.remove("three")
    pool.remove("me")
    assert pool.best_partner("narrow", now=11) is None


def test_closest_seniority_wins_without_topics() -> None:
    pool = pool_of(
        w("far", 0, rank=0),
        w("near", 5, rank=2),
        w("exact", 8, rank=3, topics=("cooking",)),
        w("me", 10, rank=3, topics=("go",)),
    )
    p = pool.best_partner("me", now=10)
    assert partner(p, "me") == "exact"
    assert p is not None and p.reason == "seniority" and p.matched_topics == ()
    pool.remove("exact")
    assert partner(pool.best_partner("me", now=10), "me") == "near"


def test_missing_seniority_counts_as_farthest() -> None:
    pool = pool_of(w("no_rank", 0), w("rank5", 1, rank=5), w("me", 2, rank=0))
    # Only the fallback makes either acceptable; then rank 5 (distance 5) beats no rank.
    assert pool.best_partner("me", now=29) is None
    assert partner(pool.best_partner("me", now=32), "me") == "rank5"


def test_seniority_window_is_configurable() -> None:
    entries = (w("a", 0, rank=1), w("b", 1, rank=3))
    assert pool_of(*entries).best_partner("a", now=5) is None
    p = pool_of(*entries, seniority_window=2).best_partner("a", now=5)
    assert partner(p, "a") == "b"
    assert p is not None and p.reason == "seniority"


@pytest.mark.parametrize("who_waited", ["querier", "candidate"])
def test_outside_window_acceptable_exactly_at_fallback(who_waited: str) -> None:
    # One side starts waiting at t=100 and reaches 30 s exactly at t=130.
    old_since, young_since = 100.0, 120.0
    pool = pool_of(w("old", old_since, rank=0), w("young", young_since, rank=5))
    querier = "old" if who_waited == "querier" else "young"
    assert pool.best_partner(querier, now=129.999) is None
    p = pool.best_partner(querier, now=130.0)
    assert partner(p, querier) == ("young" if querier == "old" else "old")
    assert p is not None and p.reason == "fallback"


def test_fallback_after_is_configurable() -> None:
    pool = pool_of(w("a", 0), w("b", 1), fallback_after=5.0)
    assert pool.best_partner("b", now=4.9) is None
    assert partner(pool.best_partner("b", now=5.0), "b") == "a"


def test_ties_go_to_longest_wait_then_user_id() -> None:
    pool = pool_of(
        w("later", 5, topics=("go",), rank=2),
        w("earlier", 3, topics=("go",), rank=2),
        w("me", 10, topics=("go",), rank=2),
    )
    assert partner(pool.best_partner("me", now=10), "me") == "earlier"
    pool.remove("earlier")
    pool.add(w("b_same", 5, topics=("go",), rank=2))
    # "b_same" and "later" both started at 5: the user id decides.
    assert partner(pool.best_partner("me", now=10), "me") == "b_same"


def test_first_is_the_longer_waiter() -> None:
    pool = pool_of(w("old", 1, topics=("go",)), w("new", 7, topics=("go",)))
    for uid in ("new", "old"):
        p = pool.best_partner(uid, now=7)
        assert p is not None
        assert (p.first.user_id, p.second.user_id) == ("old", "new")
    pool2 = pool_of(w("zed", 4, topics=("go",)), w("amy", 4, topics=("go",)))
    p = pool2.best_partner("zed", now=4)
    assert p is not None and p.user_ids == ("amy", "zed")


def test_matched_topics_sorted() -> None:
    pool = pool_of(
        w("a", 0, topics=("zig", "go", "ada", "rust")),
        w("b", 1, topics=("rust", "zig", "ada", "elm")),
    )
    p = pool.match("b", now=1)
    assert p is not None
    assert p.matched_topics == ("ada", "rust", "zig")
    assert p.reason == "topics"


# --------------------------------------------------------------------------- pool operations


def test_match_removes_both_and_best_partner_does_not() -> None:
    pool = pool_of(w("a", 0, topics=("go",)), w("b", 1, topics=("go",)), w("c", 2, rank=1))
    before = pool.best_partner("b", now=2)
    assert len(pool) == 3 and "a" in pool and "b" in pool
    after = pool.match("b", now=2)
    assert after == before
    assert "a" not in pool and "b" not in pool and len(pool) == 1
    assert pool.waiting_count(V) == 1


def test_exhaustion_and_excluded_count() -> None:
    pool = pool_of(
        w("me", 0, topics=("go",), met=("b",), excluded=("c",)),
        w("b", 1, topics=("go",)),
        w("c", 2, topics=("go",)),
        w("d", 3, topics=("go",), met=("me",)),  # met "me" from their side
        w("e", 4, topics=("go",), excluded=("me",)),  # blocked "me" from their side
        w("text_user", 5, mode=T, topics=("go",)),  # other mode: neither counted nor a partner
    )
    assert pool.excluded_count("me") == 4
    assert pool.is_exhausted("me")
    assert pool.best_partner("me", now=1000) is None
    assert pool.match("me", now=1000) is None
    pool.add(w("f", 6))
    assert pool.excluded_count("me") == 4
    assert not pool.is_exhausted("me")
    assert partner(pool.best_partner("me", now=1000), "me") == "f"


def test_alone_is_not_exhausted() -> None:
    pool = pool_of(w("me", 0, met=("x",)), w("other_mode", 0, mode=T))
    assert pool.excluded_count("me") == 0
    assert not pool.is_exhausted("me")
    assert pool.excluded_count("nobody") == 0 and not pool.is_exhausted("nobody")


def test_position() -> None:
    pool = pool_of(
        w("b", 5),
        w("a", 1),
        w("t", 0, mode=T),
        w("c", 9),
        w("c0", 5),  # same since as "b": ordered by id
    )
    assert [pool.position(u) for u in ("a", "b", "c0", "c")] == [1, 2, 3, 4]
    assert pool.position("t") == 1
    assert pool.position("ghost") is None
    pool.remove("a")
    assert pool.position("b") == 1 and pool.position("c") == 3


def test_sweep_pairs_many_and_each_user_once() -> None:
    entries = [
        w("a", 0, topics=("go",)),
        w("b", 1, rank=3),
        w("c", 2, topics=("go",)),
        w("d", 3, rank=4),
        w("e", 4, rank=0, excluded=("f",)),
        w("f", 5, rank=5),
        w("g", 6, mode=T),
    ]
    pool = pool_of(*entries)
    pairings = pool.sweep(now=10)
    # Before the fallback only topic/seniority pairs form.
    assert sorted(p.user_ids for p in pairings) == [("a", "c"), ("b", "d")]
    assert len(pool) == 3
    assert pool.sweep(now=10) == []
    # At 30 s "e" and "f" would be acceptable but blocked; "g" has no same-mode partner.
    assert pool.sweep(now=40) == []
    pool.add(w("h", 20))
    pairings = pool.sweep(now=40)
    assert len(pairings) == 1 and pairings[0].user_ids == ("e", "h")
    ids = [u for p in pairings for u in p.user_ids]
    assert len(ids) == len(set(ids))


def test_sweep_never_reuses_a_user() -> None:
    pool = pool_of(*(w(f"u{i:02}", i, topics=("go",) if i % 3 else ()) for i in range(21)))
    pairings = pool.sweep(now=100)
    ids = [u for p in pairings for u in p.user_ids]
    assert len(ids) == len(set(ids)) == 20
    assert len(pool) == 1
    assert all(u not in pool for u in ids)
    # Longest-waiting first: the oldest user is in the first pairing.
    assert pairings[0].first.user_id == "u00"


def test_remove_then_not_matched() -> None:
    pool = pool_of(w("a", 0, topics=("go",)), w("b", 1, topics=("go",)), w("c", 2, topics=("go",)))
    removed = pool.remove("a")
    assert removed is not None and removed.user_id == "a"
    assert pool.remove("a") is None
    assert "a" not in pool and pool.get("a") is None
    assert partner(pool.match("c", now=2), "c") == "b"
    assert pool.best_partner("a", now=2) is None
    assert pool.match("a", now=2) is None


def test_add_duplicate_raises() -> None:
    pool = pool_of(w("a", 0))
    with pytest.raises(ValueError):
        pool.add(w("a", 5, mode=T))
    assert pool.get("a") == w("a", 0)
    assert len(pool) == 1


def test_update_keeps_since_and_applies_exclusions() -> None:
    pool = pool_of(w("a", 0, topics=("go",)), w("b", 3, topics=("go",)), w("c", 4, topics=("go",)))
    assert partner(pool.best_partner("c", now=5), "c") == "a"
    updated = pool.update("c", excluded={"a"})
    assert updated.since == 4 and updated.topics == frozenset({"go"})
    assert pool.position("c") == 3
    assert partner(pool.best_partner("c", now=5), "c") == "b"
    pool.update("b", met={"c"}, topics=("rust",))
    assert pool.best_partner("c", now=5) is None
    assert pool.update("b", seniority=4).seniority == 4
    with pytest.raises(KeyError):
        pool.update("ghost", met=())


def test_exclusions_are_forgotten_with_the_entry_that_made_them() -> None:
    # "b" excluded "a"; once "b" unblocks (update) or rejoins with clean sets, "a" can match it.
    pool = pool_of(w("a", 0, topics=("go",)), w("b", 1, topics=("go",), excluded=("a",), met=("a",)))
    assert pool.best_partner("a", now=1) is None
    assert pool.excluded_count("a") == 1
    pool.update("b", excluded=(), met=())
    assert partner(pool.best_partner("a", now=1), "a") == "b"
    assert pool.excluded_count("a") == 0

    pool.update("b", met=("a",))
    assert pool.best_partner("a", now=1) is None
    pool.remove("b")
    pool.add(w("b", 2, topics=("go",)))
    assert partner(pool.best_partner("a", now=2), "a") == "b"


def test_next_fallback_at() -> None:
    pool = WaitingPool()
    assert pool.next_fallback_at() is None
    pool.add(w("a", 5.0, rank=0))
    pool.add(w("b", 8.0, mode=T))
    assert pool.next_fallback_at() == 35.0
    # No partner for "a" even past its deadline: it leaves the timer agenda.
    assert pool.sweep(now=35.0) == []
    assert pool.next_fallback_at() == 38.0
    assert pool.sweep(now=38.0) == []
    assert pool.next_fallback_at() is None
    pool.add(w("c", 36.0, rank=5))
    # "c" is new: it is due at its own deadline, but a sweep finds "a" for it right away.
    assert pool.next_fallback_at() == 66.0
    pairings = pool.sweep(now=36.0)
    assert [p.user_ids for p in pairings] == [("a", "c")]
    assert pool.next_fallback_at() is None


def test_next_fallback_at_survives_float_rounding() -> None:
    since = 234.43537133582825  # (since + 30.0) - since < 30.0 in binary floating point
    assert (since + 30.0) - since < 30.0
    pool = pool_of(w("a", since, rank=0), w("b", since + 1, rank=5))
    at = pool.next_fallback_at()
    assert at is not None and at - since >= 30.0
    assert at <= math.nextafter(since + 30.0, math.inf)
    assert [p.user_ids for p in pool.sweep(now=at)] == [("a", "b")]


def test_waiting_normalises_and_validates() -> None:
    entry = Waiting("a", "text", 1, topics=["go", "go"], met={"b"})  # type: ignore[arg-type]
    assert entry.mode is Mode.TEXT and entry.topics == frozenset({"go"})
    assert entry.met == frozenset({"b"}) and isinstance(entry.since, float)
    with pytest.raises(TypeError):
        Waiting("a", V, 0, topics="go")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Waiting("a", V, math.nan)
    with pytest.raises(ValueError):
        Waiting("", V, 0)
    with pytest.raises(TypeError):
        Waiting("a", V, 0, seniority=True)
    with pytest.raises(ValueError):
        WaitingPool(fallback_after=-1)


def test_policy_imports_no_clock_or_io() -> None:
    tree = ast.parse(Path(policy.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    allowed = {"__future__", "bisect", "collections", "dataclasses", "enum", "itertools", "math", "typing"}
    assert imported <= allowed, imported - allowed


# --------------------------------------------------------------------------- property tests

USER_IDS = [f"u{i}" for i in range(10)]
TOPICS = ["a", "b", "c", "d", "e", "f"]


def ref_eligible(u: Waiting, c: Waiting) -> bool:
    return (
        c.user_id != u.user_id
        and c.mode == u.mode
        and c.user_id not in u.met
        and u.user_id not in c.met
        and c.user_id not in u.excluded
        and u.user_id not in c.excluded
    )


def ref_acceptable(u: Waiting, c: Waiting, now: float, fallback: float, window: int) -> bool:
    both = u.seniority is not None and c.seniority is not None
    return (
        bool(u.topics & c.topics)
        or (both and abs(u.seniority - c.seniority) <= window)  # type: ignore[operator]
        or now - u.since >= fallback
        or now - c.since >= fallback
    )


def ref_best(
    entries: dict[str, Waiting], uid: str, now: float, fallback: float, window: int
) -> str | None:
    """Brute force: scan everyone, sort acceptable candidates by the preference key."""
    u = entries[uid]
    keyed = []
    for c in entries.values():
        if not ref_eligible(u, c) or not ref_acceptable(u, c, now, fallback, window):
            continue
        if u.seniority is None or c.seniority is None:
            distance = math.inf
        else:
            distance = abs(u.seniority - c.seniority)
        keyed.append(((-len(u.topics & c.topics), distance, c.since, c.user_id), c.user_id))
    return min(keyed)[1] if keyed else None


@dataclass
class Config:
    fallback_after: float
    seniority_window: int
    max_indexed_topics: int

    def pool(self) -> WaitingPool:
        return WaitingPool(
            fallback_after=self.fallback_after,
            seniority_window=self.seniority_window,
            max_indexed_topics=self.max_indexed_topics,
        )


configs = st.builds(
    Config,
    fallback_after=st.sampled_from([0.0, 10.0, 30.0]),
    seniority_window=st.integers(0, 2),
    max_indexed_topics=st.sampled_from([0, 1, 2, 4, 6]),
)


@st.composite
def waitings(draw: st.DrawFn, uid: str) -> Waiting:
    return Waiting(
        user_id=uid,
        mode=draw(st.sampled_from([V, V, V, T])),
        since=float(draw(st.integers(0, 40))),  # small range: many ties on since
        topics=draw(st.frozensets(st.sampled_from(TOPICS), max_size=6)),
        seniority=draw(st.none() | st.integers(0, 5)),
        met=draw(st.frozensets(st.sampled_from(USER_IDS), max_size=3)),
        excluded=draw(st.frozensets(st.sampled_from(USER_IDS), max_size=2)),
    )


@st.composite
def pools(draw: st.DrawFn) -> list[Waiting]:
    ids = draw(st.lists(st.sampled_from(USER_IDS), unique=True, max_size=len(USER_IDS)))
    return [draw(waitings(uid)) for uid in ids]


def check_pairing(
    pool: WaitingPool, entries: dict[str, Waiting], uid: str, now: float, cfg: Config
) -> None:
    expected = ref_best(entries, uid, now, cfg.fallback_after, cfg.seniority_window)
    got = pool.best_partner(uid, now)
    assert partner(got, uid) == expected
    if got is not None:
        u, c = entries[uid], entries[expected]  # type: ignore[index]
        assert got.matched_topics == tuple(sorted(u.topics & c.topics))
        assert (got.first.since, got.first.user_id) <= (got.second.since, got.second.user_id)
        both = u.seniority is not None and c.seniority is not None
        if u.topics & c.topics:
            assert got.reason == "topics"
        elif both and abs(u.seniority - c.seniority) <= cfg.seniority_window:  # type: ignore[operator]
            assert got.reason == "seniority"
        else:
            assert got.reason == "fallback"


def check_counts(pool: WaitingPool, entries: dict[str, Waiting], uid: str) -> None:
    u = entries[uid]
    same_mode = [c for c in entries.values() if c.mode == u.mode and c.user_id != uid]
    excluded = [c for c in same_mode if not ref_eligible(u, c)]
    assert pool.excluded_count(uid) == len(excluded)
    assert pool.is_exhausted(uid) == (bool(same_mode) and len(excluded) == len(same_mode))
    rank = sorted((c.since, c.user_id) for c in entries.values() if c.mode == u.mode)
    assert pool.position(uid) == rank.index((u.since, uid)) + 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, entries=pools(), now=st.integers(0, 80))
def test_best_partner_matches_brute_force(cfg: Config, entries: list[Waiting], now: int) -> None:
    pool = cfg.pool()
    for entry in entries:
        pool.add(entry)
    by_id = {e.user_id: e for e in entries}
    for uid in by_id:
        check_pairing(pool, by_id, uid, float(now), cfg)
        check_counts(pool, by_id, uid)
    assert len(pool) == len(by_id)


def ref_no_acceptable_pair_left(entries: dict[str, Waiting], now: float, cfg: Config) -> None:
    for u in entries.values():
        for c in entries.values():
            if ref_eligible(u, c):
                assert not ref_acceptable(u, c, now, cfg.fallback_after, cfg.seniority_window), (
                    u.user_id,
                    c.user_id,
                )


# Fewer ids than USER_IDS so that remove/update/match mostly hit someone who is waiting.
OP_IDS = USER_IDS[:6]
ops = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(OP_IDS)),
    st.tuples(st.just("remove"), st.sampled_from(OP_IDS)),
    st.tuples(st.just("update"), st.sampled_from(OP_IDS)),
    st.tuples(st.just("match"), st.sampled_from(OP_IDS)),
    st.tuples(st.just("sweep"), st.just("")),
    st.tuples(st.just("tick"), st.just("")),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=configs,
    initial=pools(),
    steps=st.lists(ops, min_size=8, max_size=40),
    data=st.data(),
)
def test_operation_sequences_match_brute_force(
    cfg: Config, initial: list[Waiting], steps: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Index maintenance across add/remove/update/match/sweep, against a plain dict model."""
    pool = cfg.pool()
    model: dict[str, Waiting] = {}
    for entry in initial:
        pool.add(entry)
        model[entry.user_id] = entry
    now = 0.0
    for op, uid in steps:
        if op == "tick":
            now += data.draw(st.sampled_from([0.5, 5.0, 10.0, 30.0]))
        elif op == "add":
            entry = data.draw(waitings(uid))
            # Arrivals may be late (since < now) or early relative to others: order must hold.
            if uid in model:
                with pytest.raises(ValueError):
                    pool.add(entry)
            else:
                pool.add(entry)
                model[uid] = entry
        elif op == "remove":
            assert pool.remove(uid) == model.pop(uid, None)
        elif op == "update":
            if uid not in model:
                continue
            met = data.draw(st.frozensets(st.sampled_from(USER_IDS), max_size=3))
            topics = data.draw(st.frozensets(st.sampled_from(TOPICS), max_size=6))
            new = pool.update(uid, met=met, topics=topics)
            assert new.since == model[uid].since
            model[uid] = Waiting(
                uid, model[uid].mode, model[uid].since, topics, model[uid].seniority, met,
                model[uid].excluded,
            )
            assert new == model[uid]
        elif op == "match":
            if uid in model:
                expected = ref_best(model, uid, now, cfg.fallback_after, cfg.seniority_window)
                got = pool.match(uid, now)
                assert partner(got, uid) == expected
                if expected is not None:
                    del model[uid], model[expected]
            else:
                assert pool.match(uid, now) is None
        elif op == "sweep":
            pairings = pool.sweep(now)
            seen: set[str] = set()
            for p in pairings:
                a, b = p.user_ids
                assert a not in seen and b not in seen
                seen |= {a, b}
                assert ref_eligible(model[a], model[b])
                assert ref_acceptable(model[a], model[b], now, cfg.fallback_after, cfg.seniority_window)
            for uid_ in seen:
                del model[uid_]
            ref_no_acceptable_pair_left(model, now, cfg)
            # A timer armed now must not fire in the past, and must fire no later than the
            # moment the next pair becomes acceptable just by waiting longer.
            nxt = pool.next_fallback_at()
            assert nxt is None or nxt > now
            eligible_pairs = [
                (u, c) for u in model.values() for c in model.values() if ref_eligible(u, c)
            ]
            if eligible_pairs:
                soonest = min(min(u.since, c.since) + cfg.fallback_after for u, c in eligible_pairs)
                assert nxt is not None and nxt <= soonest
        assert len(pool) == len(model)
        for uid_ in model:
            check_pairing(pool, model, uid_, now, cfg)
            check_counts(pool, model, uid_)
