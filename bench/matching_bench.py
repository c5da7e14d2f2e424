"""Benchmark the matching policy: joins/s and time-to-match with a full waiting pool.

Usage: .venv/bin/python bench/matching_bench.py [--waiting 1000 10000] [--joins N] [--seed S]

For each pool size the pool is filled with random users (Zipf-ish topic
popularity, 1-4 topics each, seniority 0-5 or none, some met/blocked sets),
then each join adds a new user and calls match() on it. Matched partners are
replaced by fresh users, and unmatched joiners leave, so the pool size stays
the same. The simulated clock advances 1 ms per join. Only the add() and
match() calls are timed (time.perf_counter). After the joins it times a few
harder cases and a sweep() after everyone has passed the fallback.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.policy import Mode, Waiting, WaitingPool  # noqa: E402

CLOCK_STEP = 0.001  # simulated seconds between joins
INITIAL_SPREAD = 25.0  # initial waiters arrived over the last 25 s: just short of the fallback


class Population:
    """Random users plus the ids currently waiting, so met/blocked sets name real waiters."""

    def __init__(self, rng: random.Random, n_topics: int, zipf_s: float) -> None:
        self.rng = rng
        self.topics = [f"topic{i:02}" for i in range(n_topics)]
        self.weights = [1.0 / (i + 1) ** zipf_s for i in range(n_topics)]
        self.next_id = 0
        self.ids: list[str] = []  # waiting ids, for O(1) random picks
        self.slot: dict[str, int] = {}

    def make(self, since: float, n_topics: int | None = None) -> Waiting:
        rng = self.rng
        k = n_topics if n_topics is not None else rng.randint(1, 4)
        chosen: set[str] = set()
        while len(chosen) < k:
            chosen.add(rng.choices(self.topics, self.weights)[0])
        met: frozenset[str] = frozenset()
        excluded: frozenset[str] = frozenset()
        if self.ids and rng.random() < 0.3:
            met = frozenset(rng.choice(self.ids) for _ in range(rng.randint(1, 3)))
        if self.ids and rng.random() < 0.05:
            excluded = frozenset({rng.choice(self.ids)})
        self.next_id += 1
        return Waiting(
            user_id=f"user{self.next_id:07}",
            mode=Mode.VIDEO if rng.random() < 0.7 else Mode.TEXT,
            since=since,
            topics=frozenset(chosen),
            seniority=None if rng.random() < 0.1 else rng.randint(0, 5),
            met=met,
            excluded=excluded,
        )

    def joined(self, uid: str) -> None:
        self.slot[uid] = len(self.ids)
        self.ids.append(uid)

    def left(self, uid: str) -> None:
        i = self.slot.pop(uid)
        last = self.ids.pop()
        if last != uid:
            self.ids[i] = last
            self.slot[last] = i


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_size(waiting: int, joins: int, seed: int, n_topics: int, zipf_s: float) -> dict[str, object]:
    rng = random.Random(seed)
    people = Population(rng, n_topics, zipf_s)
    pool = WaitingPool()
    now = 0.0
    for i in range(waiting):
        entry = people.make(since=now - INITIAL_SPREAD + INITIAL_SPREAD * i / waiting)
        pool.add(entry)
        people.joined(entry.user_id)

    match_ms: list[float] = []
    join_ms: list[float] = []
    reasons: Counter[str] = Counter()
    unmatched = 0
    gc.collect()
    for _ in range(joins):
        now += CLOCK_STEP
        entry = people.make(since=now)
        t0 = time.perf_counter()
        pool.add(entry)
        t1 = time.perf_counter()
        pairing = pool.match(entry.user_id, now)
        t2 = time.perf_counter()
        match_ms.append((t2 - t1) * 1000)
        join_ms.append((t2 - t0) * 1000)
        if pairing is None:
            unmatched += 1
            pool.remove(entry.user_id)
            continue
        reasons[pairing.reason] += 1
        other = pairing.first if pairing.second.user_id == entry.user_id else pairing.second
        people.left(other.user_id)
        filler = people.make(since=now)
        pool.add(filler)
        people.joined(filler.user_id)
    assert len(pool) == waiting

    hard = hard_cases(pool, people, now, rng)

    # Everyone past the fallback at once: the timer's worst sweep.
    t0 = time.perf_counter()
    pairs = pool.sweep(now + 31.0)
    sweep_ms = (time.perf_counter() - t0) * 1000

    total_s = sum(join_ms) / 1000
    return {
        "waiting": waiting,
        "joins": joins,
        "joins_per_s": joins / total_s,
        "match_p50": statistics.median(match_ms),
        "match_p99": pct(match_ms, 99),
        "match_max": max(match_ms),
        "join_p99": pct(join_ms, 99),
        "matched": joins - unmatched,
        "reasons": reasons,
        "hard": hard,
        "sweep_ms": sweep_ms,
        "sweep_pairs": len(pairs),
    }


def hard_cases(
    pool: WaitingPool, people: Population, now: float, rng: random.Random
) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of best_partner() for inputs that leave the fast path; pool unchanged."""
    trials = 200
    out: dict[str, tuple[float, float]] = {}

    oldest = sorted(
        (e.since, e.user_id) for uid in people.ids if (e := pool.get(uid)) and e.mode is Mode.VIDEO
    )[:500]
    cases = {
        # More topics than the subset index covers: overlaps are counted over topic buckets.
        "wide joiner (8 topics)": lambda i: people.make(since=now, n_topics=8),
        # Seniority/fallback path: the 500 longest waiters are all excluded and must be skipped.
        "500 oldest excluded": lambda i: Waiting(
            user_id=f"hard{i}",
            mode=Mode.VIDEO,
            since=now - 40.0,
            seniority=rng.randint(0, 5),
            met=frozenset(uid for _, uid in oldest),
        ),
    }
    for name, make in cases.items():
        times: list[float] = []
        for i in range(trials):
            entry = make(i)
            pool.add(entry)
            t0 = time.perf_counter()
            pool.best_partner(entry.user_id, now)
            times.append((time.perf_counter() - t0) * 1000)
            pool.remove(entry.user_id)
        out[name] = (statistics.median(times), pct(times, 99))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--joins", type=int, default=5000, help="joins per pool size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--zipf", type=float, default=1.0, help="topic popularity exponent")
    args = parser.parse_args(argv)

    results = [run_size(n, args.joins, args.seed, args.topics, args.zipf) for n in args.waiting]

    print(f"matching policy bench (python {sys.version.split()[0]}, seed {args.seed}, "
          f"{args.topics} topics, zipf {args.zipf})")
    header = (f"{'waiting':>8} {'joins':>6} {'joins/s':>9} {'match p50':>10} {'match p99':>10} "
              f"{'match max':>10} {'join p99':>9} {'matched':>8}  reasons")
    print(header)
    print("-" * len(header))
    for r in results:
        reasons = " ".join(f"{k}={v}" for k, v in sorted(r["reasons"].items()))  # type: ignore[attr-defined]
        print(f"{r['waiting']:>8} {r['joins']:>6} {r['joins_per_s']:>9.0f} "
              f"{r['match_p50']:>8.3f}ms {r['match_p99']:>8.3f}ms {r['match_max']:>8.3f}ms "
              f"{r['join_p99']:>7.3f}ms {r['matched']:>8}  {reasons}")
    print()
    print(f"{'waiting':>8}  {'harder case (best_partner)':<28} {'p50':>9} {'p99':>9}")
    for r in results:
        for name, (p50, p99) in r["hard"].items():  # type: ignore[attr-defined]
            print(f"{r['waiting']:>8}  {name:<28} {p50:>7.3f}ms {p99:>7.3f}ms")
        print(f"{r['waiting']:>8}  {'sweep, all past fallback':<28} {r['sweep_ms']:>7.1f}ms "
              f"({r['sweep_pairs']} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
