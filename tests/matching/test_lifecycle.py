"""Match lifecycle transitions: every status change and its timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from matching.errors import Conflict, NotFound
from matching.lifecycle import MatchState, Status, duration_seconds, end, join, require_open

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _pending() -> MatchState:
    return MatchState(id="m1", user1_id="a", user2_id="b", mode="VIDEO", status=Status.PENDING, matched_at=T0)


def test_both_joins_start_the_call() -> None:
    first, started = join(_pending(), "a", T0 + timedelta(seconds=1))
    assert not started and first.status is Status.PENDING and first.user1_joined_at == T0 + timedelta(seconds=1)
    second, started = join(first, "b", T0 + timedelta(seconds=2))
    assert started and second.status is Status.ACTIVE
    assert second.user2_joined_at == second.started_at == T0 + timedelta(seconds=2)


def test_join_twice_keeps_the_first_time() -> None:
    once, _ = join(_pending(), "b", T0 + timedelta(seconds=1))
    twice, started = join(once, "b", T0 + timedelta(seconds=5))
    assert twice == once and not started


def test_strangers_cannot_join_or_end() -> None:
    with pytest.raises(NotFound):
        join(_pending(), "c", T0)
    with pytest.raises(NotFound):
        require_open(_pending(), "c")


@pytest.mark.parametrize("status", [Status.ENDED, Status.SKIPPED])
def test_end_after_start_has_a_duration(status: Status) -> None:
    active, _ = join(join(_pending(), "a", T0)[0], "b", T0 + timedelta(seconds=3))
    closed = end(active, status=status, ended_by="a", now=T0 + timedelta(seconds=64, milliseconds=999))
    assert (closed.status, closed.ended_by, closed.duration) == (status, "a", 61)
    assert closed.ended_at == T0 + timedelta(seconds=64, milliseconds=999)
    with pytest.raises(Conflict):
        end(closed, status=Status.ENDED, ended_by="b", now=T0 + timedelta(seconds=70))
    with pytest.raises(Conflict):
        join(closed, "a", T0 + timedelta(seconds=70))


def test_timeout_only_while_pending() -> None:
    timed_out = end(_pending(), status=Status.TIMEOUT, ended_by=None, now=T0 + timedelta(seconds=30))
    assert timed_out.status is Status.TIMEOUT and timed_out.duration is None and timed_out.ended_by is None
    active, _ = join(join(_pending(), "a", T0)[0], "b", T0)
    with pytest.raises(Conflict):
        end(active, status=Status.TIMEOUT, ended_by=None, now=T0 + timedelta(seconds=30))


def test_open_statuses_cannot_close() -> None:
    with pytest.raises(ValueError):
        end(_pending(), status=Status.ACTIVE, ended_by="a", now=T0)


def test_skip_before_start_has_no_duration() -> None:
    skipped = end(_pending(), status=Status.SKIPPED, ended_by="b", now=T0 + timedelta(seconds=4))
    assert skipped.duration is None and skipped.status is Status.SKIPPED


def test_duration_is_whole_seconds_never_negative() -> None:
    assert duration_seconds(None, T0) is None
    assert duration_seconds(T0, T0 + timedelta(seconds=59, milliseconds=999)) == 59
    assert duration_seconds(T0 + timedelta(seconds=1), T0) == 0
