"""Benchmark the queue path in-process: CallService on a real database, no sockets.

Usage: .venv/bin/python bench/queue_path.py [--pairs 2000] [--concurrency 16] [--database URL]

Each pair is two users who share a topic no one else has: A joins the queue, B joins and is
paired with A, then both join the match (4 queue operations, as in load.js's pairing phase).
`--concurrency` pairs run at a time. It prints queue operations a second, process CPU (all
threads, so the database driver's too) per operation, SQL statements (an executemany counts
once) and batch-writer transactions per pair, and time to
match (B's join called to `match:found` handed to both) p50/p99. The default database is a
fresh SQLite file in a temporary directory, as `make run` uses. Logging is at WARNING.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from matching.calls import CallService  # noqa: E402
from matching.clock import SystemClock  # noqa: E402
from matching.identity import Identity, Role  # noqa: E402
from matching.policy import Mode  # noqa: E402
from matching.store.database import create_engine, session_factory  # noqa: E402
from matching.store.migrate import upgrade  # noqa: E402
from pairwire.logs import configure_logging  # noqa: E402


class FoundTimes:
    """A notifier that notes when each user's `match:found` was handed over."""

    def __init__(self) -> None:
        self.found: dict[str, float] = {}

    async def send(self, user_id: str, event_name: str, payload: dict[str, Any]) -> None:
        if event_name == "match:found":
            self.found[user_id] = time.perf_counter()


async def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = tempfile.TemporaryDirectory(prefix="pairwire-bench-")
    url = args.database or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    engine = create_engine(url)
    await upgrade(engine)
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    notifier = FoundTimes()
    service = CallService(db=session_factory(engine), notifier=notifier, clock=SystemClock())
    # Statements through the async engine, and through the batch writer's own connection (SQLite).
    for sync_engine in (engine.sync_engine, service.writer.engine):
        if sync_engine is not None:
            event.listen(sync_engine, "before_cursor_execute", count)
    people = [(Identity(f"a{i:06}", Role.USER, f"a{i}"), Identity(f"b{i:06}", Role.USER, f"b{i}"))
              for i in range(args.pairs)]
    for a, b in people:
        await service.connected(a)
        await service.connected(b)
    match_times: list[float] = []

    async def pair(i: int) -> None:
        a, b = people[i]
        topic = [f"t{i}"]
        await service.join_queue(a, Mode.TEXT, topic)
        started = time.perf_counter()
        answer = await service.join_queue(b, Mode.TEXT, topic)
        match_id = answer["matchId"]
        match_times.append(max(notifier.found[a.user_id], notifier.found[b.user_id]) - started)
        await asyncio.gather(service.join_match(a, match_id), service.join_match(b, match_id))

    next_pair = iter(range(args.pairs))

    async def worker() -> None:
        for i in next_pair:
            await pair(i)

    print("pairing", flush=True, file=sys.stderr)
    statements[0] = 0
    batches0 = service.writer.batches
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(args.concurrency))), timeout=args.timeout)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ops = 4 * args.pairs
    batches = service.writer.batches - batches0
    await service.close()
    await engine.dispose()
    tmp.cleanup()
    match_times.sort()
    return {
        "ops_per_s": ops / wall,
        "cpu_us_per_op": cpu / ops * 1e6,
        "statements_per_pair": statements[0] / args.pairs,
        "transactions_per_pair": batches / args.pairs,
        "match_p50_ms": statistics.median(match_times) * 1e3,
        "match_p99_ms": match_times[int(0.99 * (len(match_times) - 1))] * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", help="a SQLAlchemy async URL (default: a fresh SQLite file)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args()
    configure_logging("WARNING")  # the queue path, not one log line a match on the terminal
    result = asyncio.run(run(args))
    print(" ".join(f"{k}={v:.2f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
