"""`/api/activity/*`: status updates, who is online now, and the moderators' timeline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from matching.identity import Role
from matching.store import users
from matching.store.models import ActivityStatus, CallMode, UserActivity, new_id
from matching.store.types import utcnow
from pairwire.api.store import SESSIONS
from tests.support.clients import SocketUser, sign_in


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


async def seed_rows(server, rows: list[tuple[str, ActivityStatus, CallMode | None, datetime, datetime]]) -> None:  # type: ignore[no-untyped-def]
    """Users (created once each) and their activity rows, written straight to the store."""
    async with server.app[SESSIONS].begin() as s:
        created: dict[str, str] = {}
        for name, status, mode, joined, last_seen in rows:
            if name not in created:
                user = await users.create_user(s, display_name=name, now=joined)
                created[name] = user.id
            s.add(UserActivity(id=new_id(), user_id=created[name], status=status, mode=mode, joined_at=joined,
                               last_seen=last_seen))


async def test_update_and_current_stats(server, apis) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    # Rows that must not count: a stale ONLINE row, and a user whose newest row is OFFLINE.
    await seed_rows(server, [
        ("stale", ActivityStatus.ONLINE, None, now - timedelta(minutes=10), now - timedelta(minutes=5)),
        ("gone", ActivityStatus.IN_CALL, CallMode.VIDEO, now - timedelta(seconds=20), now - timedelta(seconds=10)),
        ("gone", ActivityStatus.OFFLINE, None, now - timedelta(seconds=10), now - timedelta(seconds=10)),
    ])
    callers = {name: apis(f"user-{name}") for name in ("a", "b", "c", "d", "e")}
    for name, body in [
        ("a", {"status": "ONLINE"}),
        ("b", {"status": "SEARCHING", "mode": "VIDEO"}),
        ("c", {"status": "IN_CALL", "mode": "TEXT"}),
        ("d", {"status": "SEARCHING"}),
        ("e", {"status": "OFFLINE"}),
    ]:
        assert await callers[name].post("/api/activity/update", body) == (200, {"success": True})
    status, answer = await callers["a"].get("/api/activity/stats")
    assert status == 200
    assert answer == {"totalOnline": 4, "searching": 2, "inCall": 1, "breakdown": {"video": 1, "text": 1}}

    # Moving on: b finds a call, a goes offline.
    await callers["b"].post("/api/activity/update", {"status": "IN_CALL", "mode": "VIDEO"})
    await callers["a"].post("/api/activity/update", {"status": "OFFLINE"})
    _, answer = await apis("mod", Role.MODERATOR).get("/api/activity/stats")
    assert answer == {"totalOnline": 3, "searching": 1, "inCall": 2, "breakdown": {"video": 1, "text": 1}}


async def test_same_status_only_extends_the_row(server, apis) -> None:  # type: ignore[no-untyped-def]
    api = apis("same")
    for _ in range(3):
        assert (await api.post("/api/activity/update", {"status": "SEARCHING", "mode": "TEXT"}))[0] == 200
    await api.post("/api/activity/update", {"status": "SEARCHING", "mode": "VIDEO"})
    async with server.app[SESSIONS]() as s:
        rows = (await s.execute(
            select(UserActivity).where(UserActivity.user_id == "same").order_by(UserActivity.joined_at)
        )).scalars().all()
    assert [(r.status, r.mode) for r in rows][-1] == (ActivityStatus.SEARCHING, CallMode.VIDEO)
    assert len(rows) <= 2 and all(r.joined_at <= r.last_seen for r in rows)


async def test_stats_follow_real_socket_users(server, apis) -> None:  # type: ignore[no-untyped-def]
    people: list[SocketUser] = [await sign_in(server.url, name, ["go"]) for name in ("Ann", "Bob", "Cy")]
    try:
        ann, bob, cy = people
        viewer = apis("viewer")
        _, answer = await viewer.get("/api/activity/stats")
        assert answer == {"totalOnline": 3, "searching": 0, "inCall": 0, "breakdown": {"video": 0, "text": 0}}
        assert (await ann.call("queue:join", {"mode": "video"}))["ok"]
        assert (await cy.call("queue:join", {"mode": "text"}))["ok"]
        _, answer = await viewer.get("/api/activity/stats")
        assert answer == {"totalOnline": 3, "searching": 2, "inCall": 0, "breakdown": {"video": 1, "text": 1}}
        joined = await bob.call("queue:join", {"mode": "video"})
        assert joined["ok"] and joined["matchId"]
        _, answer = await viewer.get("/api/activity/stats")
        assert answer == {"totalOnline": 3, "searching": 1, "inCall": 2, "breakdown": {"video": 2, "text": 1}}
    finally:
        for person in people:
            await person.close()


async def test_history_counts_each_users_status_at_each_bucket(server, apis) -> None:  # type: ignore[no-untyped-def]
    await seed_rows(server, [
        ("a", ActivityStatus.ONLINE, None, at("2024-01-15T10:00:00"), at("2024-01-15T10:30:00")),
        ("a", ActivityStatus.SEARCHING, CallMode.VIDEO, at("2024-01-15T10:30:00"), at("2024-01-15T11:05:00")),
        ("a", ActivityStatus.IN_CALL, CallMode.VIDEO, at("2024-01-15T11:05:00"), at("2024-01-15T12:10:00")),
        ("a", ActivityStatus.OFFLINE, None, at("2024-01-15T12:10:00"), at("2024-01-15T12:10:00")),
        # b's SEARCHING row ends exactly when IN_CALL starts: at 10:00 b counts once, as in a call.
        ("b", ActivityStatus.SEARCHING, CallMode.TEXT, at("2024-01-15T09:00:00"), at("2024-01-15T10:00:00")),
        ("b", ActivityStatus.IN_CALL, CallMode.TEXT, at("2024-01-15T10:00:00"), at("2024-01-15T11:00:00")),
        ("b", ActivityStatus.OFFLINE, None, at("2024-01-15T11:00:00"), at("2024-01-15T11:00:00")),
        ("c", ActivityStatus.ONLINE, None, at("2024-01-15T08:00:00"), at("2024-01-15T09:59:59.999")),
    ])
    mod = apis("mod", Role.MODERATOR)
    status, answer = await mod.get(
        "/api/activity/history", startTime="2024-01-15T10:00:00Z", endTime="2024-01-15T13:00:00Z"
    )
    assert status == 200, answer
    assert answer["timeline"] == [
        {"timestamp": "2024-01-15T10:00:00.000Z", "onlineCount": 2, "searchingCount": 0, "inCallCount": 1},
        {"timestamp": "2024-01-15T11:00:00.000Z", "onlineCount": 1, "searchingCount": 1, "inCallCount": 0},
        {"timestamp": "2024-01-15T12:00:00.000Z", "onlineCount": 1, "searchingCount": 0, "inCallCount": 1},
    ]
    assert answer["timeRange"] == {"start": "2024-01-15T10:00:00.000Z", "end": "2024-01-15T13:00:00.000Z"}

    # Other offsets, finer buckets; an admin may read it too.
    admin = apis("admin", Role.ADMIN)
    _, answer = await admin.get(
        "/api/activity/history", startTime="2024-01-15T10:30:00+01:00", endTime="2024-01-15T10:00:00Z", bucket="900"
    )
    assert [(p["timestamp"], p["onlineCount"], p["searchingCount"]) for p in answer["timeline"]] == [
        ("2024-01-15T09:30:00.000Z", 2, 1),  # b searching, c online
        ("2024-01-15T09:45:00.000Z", 2, 1),
    ]
    # One instant: startTime == endTime.
    _, answer = await mod.get(
        "/api/activity/history", startTime="2024-01-15T10:45:00Z", endTime="2024-01-15T10:45:00Z"
    )
    assert answer["timeline"] == [
        {"timestamp": "2024-01-15T10:45:00.000Z", "onlineCount": 2, "searchingCount": 1, "inCallCount": 1}
    ]


async def test_history_defaults_to_the_last_day_by_hour(server, apis) -> None:  # type: ignore[no-untyped-def]
    api = apis("someone")
    await api.post("/api/activity/update", {"status": "ONLINE"})
    status, answer = await apis("mod", Role.MODERATOR).get("/api/activity/history")
    assert status == 200
    timeline = answer["timeline"]
    assert len(timeline) == 24 and all(p["timestamp"].endswith("Z") for p in timeline)
    first = datetime.fromisoformat(timeline[0]["timestamp"].replace("Z", "+00:00"))
    assert abs((utcnow() - timedelta(hours=24) - first).total_seconds()) < 10
    # The row just written started after the last bucket start: nothing counted yet.
    assert all(p["onlineCount"] == 0 for p in timeline)
    _, answer = await apis("mod2", Role.MODERATOR).get("/api/activity/history", bucket="86400")
    assert len(answer["timeline"]) == 1
    # At the instant the row was written, that user was online.
    async with server.app[SESSIONS]() as s:
        joined = (await s.execute(select(UserActivity.joined_at))).scalar_one()
    instant = joined.isoformat()
    _, answer = await apis("mod3", Role.MODERATOR).get("/api/activity/history", startTime=instant, endTime=instant)
    assert [p["onlineCount"] for p in answer["timeline"]] == [1]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/activity/update"), ("get", "/api/activity/stats"), ("get", "/api/activity/history")],
)
async def test_token_required(server, apis, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    api = apis()
    status, answer = await (api.get(path) if method == "get" else api.post(path, {"status": "ONLINE"}))
    assert status == 401 and answer["error"]["code"] == "unauthorized"


async def test_history_is_for_moderators(server, apis) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis("plain").get("/api/activity/history")
    assert status == 403 and answer["error"]["code"] == "forbidden"
    # Refused for the role even when the query is wrong too.
    status, answer = await apis("plain").get("/api/activity/history", bucket="x")
    assert status == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "online"},
        {"status": "AWAY"},
        {"status": None},
        {"status": "SEARCHING", "mode": "video"},
        {"status": "SEARCHING", "mode": "AUDIO"},
        {"status": "ONLINE", "mode": "VIDEO"},
        {"status": "OFFLINE", "mode": "TEXT"},
        {"status": "ONLINE", "extra": 1},
        [],
        "ONLINE",
    ],
)
async def test_bad_update_is_invalid(server, apis, body: Any) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis("u").post("/api/activity/update", body)
    assert status == 400 and answer["error"]["code"] == "invalid", answer


async def test_update_body_must_be_json(server, apis) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis("u").post("/api/activity/update", raw=b"{status: ONLINE")
    assert status == 400 and answer["error"]["code"] == "invalid"


async def test_stats_takes_no_query(server, apis) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis("u").get("/api/activity/stats", mode="VIDEO")
    assert status == 400 and answer["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "params",
    [
        {"startTime": "yesterday"},
        {"startTime": "2024-01-15T10:00:00"},  # no timezone
        {"endTime": "2024-01-15"},
        {"endTime": "1700000000"},
        {"startTime": "2024-01-15T10:00:00Z", "endTime": "2024-01-15T09:00:00Z"},
        {"startTime": "2024-02-30T10:00:00Z"},
        {"endTime": "0001-01-01T00:00:00Z"},  # the default 24 h before it does not exist
        {"endTime": "9999-12-31T23:00:00-05:00"},
        {"bucket": "59"},
        {"bucket": "86401"},
        {"bucket": "hour"},
        {"bucket": "60.5"},
        {"bucket": "60"},  # 1,440 buckets over the default day
        {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-03-01T00:00:00Z"},  # 1,440 hours
        {"step": "60"},
    ],
)
async def test_bad_history_query_is_invalid(server, apis, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis("mod", Role.MODERATOR).get("/api/activity/history", **params)
    assert status == 400 and answer["error"]["code"] == "invalid", answer
