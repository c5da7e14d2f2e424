"""Injected time: a clock for timestamps and durations, and timers that fire on it.

Every timeout of the domain (the 30 s matching fallback, the match join timeout, the
disconnect grace period) is a timer on this clock, so tests drive them by advancing a
`ManualClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

Callback = Callable[[], Awaitable[None]]


class Timer(Protocol):
    """A pending callback; cancel() is safe to call more than once."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time for records, monotonic seconds for waits, and timers on the same time line."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callback) -> Timer: ...


def _millis(moment: datetime) -> datetime:
    # The store keeps milliseconds; handing out finer times would make records disagree with memory.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock:
    """The real clock: UTC wall time, the event loop's monotonic time, and loop timers."""

    def now(self) -> datetime:
        return _millis(datetime.now(timezone.utc))

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callback) -> Timer:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, delay), _spawn, callback)


_background: set[asyncio.Task[None]] = set()


def _spawn(callback: Callback) -> None:
    # Keep a reference until done, or the task may be collected mid-flight.
    task = asyncio.get_running_loop().create_task(callback())
    _background.add(task)
    task.add_done_callback(_background.discard)


@dataclass(order=True)
class _Scheduled:
    when: float
    seq: int
    callback: Callback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to; `advance()` runs the timers that fall due, in order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall0 = _millis(start or datetime(2026, 1, 1, tzinfo=timezone.utc))
        self._mono = 0.0
        self._timers: list[_Scheduled] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return _millis(self._wall0 + timedelta(seconds=self._mono))

    def monotonic(self) -> float:
        return self._mono

    def call_later(self, delay: float, callback: Callback) -> Timer:
        timer = _Scheduled(self._mono + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def advance(self, seconds: float) -> None:
        """Move time forward, awaiting each due timer's callback at its own moment."""
        target = self._mono + seconds
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, timer.when)
            await timer.callback()
        self._mono = target

    @property
    def pending(self) -> int:
        """Timers not yet fired or cancelled."""
        return sum(1 for t in self._timers if not t.cancelled)


def iso(moment: datetime | None) -> str | None:
    """The contract's time format: ISO 8601 UTC with milliseconds and a `Z`."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
