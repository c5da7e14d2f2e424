"""`/api/matches*`: match history by person, session, time and status; one match; statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from matching.identity import Role
from matching.store import users
from matching.store.models import CallMode, Match, MatchStatus, new_id
from matching.store.types import utcnow
from pairwire.api.store import SESSIONS
from tests.support.clients import SocketUser, sign_in


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@dataclass
class History:
    """Three people and five matches with known times (ids by name)."""

    user: dict[str, str]
    match: dict[str, str]
    api: Any


@pytest.fixture
async def history(server, apis) -> History:  # type: ignore[no-untyped-def]
    async with server.app[SESSIONS].begin() as s:
        ids = {}
        for name in ("Ann", "Bob", "Cy"):
            ids[name] = (await users.create_user(s, display_name=name, now=at("2024-01-01T00:00:00"))).id
        specs: dict[str, dict[str, Any]] = {
            "m1": dict(user1="Ann", user2="Bob", s1="sA1", s2="sB1", mode=CallMode.VIDEO, status=MatchStatus.ENDED,
                       matched="2024-01-15T10:00:00", started="2024-01-15T10:00:05", ended="2024-01-15T10:05:05",
                       duration=300, j1="2024-01-15T10:00:02", j2="2024-01-15T10:00:05", by="Ann", topics=["rust"]),
            "m2": dict(user1="Ann", user2="Cy", s1="sA1", s2="sC1", mode=CallMode.TEXT, status=MatchStatus.SKIPPED,
                       matched="2024-01-15T10:59:59.999", started="2024-01-15T11:00:01", ended="2024-01-15T11:01:02",
                       duration=61, j1="2024-01-15T11:00:00", j2="2024-01-15T11:00:01", by="Cy", topics=[]),
            "m3": dict(user1="Bob", user2="Cy", s1="sB1", s2="sC1", mode=CallMode.VIDEO, status=MatchStatus.ACTIVE,
                       matched="2024-01-15T11:10:00", started="2024-01-15T11:10:03", ended=None, duration=None,
                       j1="2024-01-15T11:10:01", j2="2024-01-15T11:10:03", by=None, topics=["go", "rust"]),
            "m4": dict(user1="Ann", user2="Bob", s1="sA2", s2="sB2", mode=CallMode.VIDEO, status=MatchStatus.TIMEOUT,
                       matched="2024-01-15T12:00:00", started=None, ended="2024-01-15T12:00:30", duration=None,
                       j1=None, j2=None, by=None, topics=[]),
            "m5": dict(user1="Cy", user2="Bob", s1="sC0", s2="sB0", mode=CallMode.TEXT, status=MatchStatus.PENDING,
                       matched="2024-01-14T09:00:00", started=None, ended=None, duration=None,
                       j1=None, j2=None, by=None, topics=[]),
        }
        match_ids = {}
        for key, m in specs.items():
            match_ids[key] = new_id()
            opt = lambda v: None if v is None else at(v)  # noqa: E731
            s.add(Match(
                id=match_ids[key], user1_id=ids[m["user1"]], user2_id=ids[m["user2"]], user1_session_id=m["s1"],
                user2_session_id=m["s2"], mode=m["mode"], status=m["status"], matched_at=at(m["matched"]),
                started_at=opt(m["started"]), ended_at=opt(m["ended"]), duration=m["duration"],
                ended_by=ids[m["by"]] if m["by"] else None, room_id=new_id(), user1_joined_at=opt(m["j1"]),
                user2_joined_at=opt(m["j2"]), matched_topics=m["topics"], created_at=at(m["matched"]),
                updated_at=at(m["matched"]),
            ))
    return History(ids, match_ids, apis)


def ids_of(answer: dict[str, Any], h: History) -> list[str]:
    names = {v: k for k, v in h.match.items()}
    return [names[m["id"]] for m in answer["matches"]]


async def test_moderator_lists_every_match_newest_first(history: History) -> None:
    h = history
    status, answer = await h.api("mod", Role.MODERATOR).get("/api/matches")
    assert status == 200, answer
    assert ids_of(answer, h) == ["m4", "m3", "m2", "m1", "m5"]
    assert answer["total"] == 5
    assert answer["timeRange"] == {"start": "2024-01-14T09:00:00.000Z", "end": "2024-01-15T12:00:00.000Z"}
    m1 = answer["matches"][3]
    assert m1 == {
        "id": h.match["m1"],
        "user1Id": h.user["Ann"],
        "user2Id": h.user["Bob"],
        "user1": {"id": h.user["Ann"], "name": "Ann"},
        "user2": {"id": h.user["Bob"], "name": "Bob"},
        "mode": "VIDEO",
        "status": "ENDED",
        "matchedAt": "2024-01-15T10:00:00.000Z",
        "startedAt": "2024-01-15T10:00:05.000Z",
        "endedAt": "2024-01-15T10:05:05.000Z",
        "duration": 300,
        "matchedTopics": ["rust"],
        "user1JoinedAt": "2024-01-15T10:00:02.000Z",
        "user2JoinedAt": "2024-01-15T10:00:05.000Z",
        "endedBy": h.user["Ann"],
        "user1SessionId": "sA1",
        "user2SessionId": "sB1",
    }
    m4 = answer["matches"][0]
    assert m4["startedAt"] is None and m4["duration"] is None and m4["user1JoinedAt"] is None
    assert m4["endedBy"] is None and m4["status"] == "TIMEOUT"
    # An admin sees the same.
    _, again = await h.api("admin", Role.ADMIN).get("/api/matches")
    assert again == answer


async def test_moderator_filters(history: History) -> None:
    h = history
    mod = h.api("mod", Role.MODERATOR)

    async def listed(**params: str) -> list[str]:
        status, answer = await mod.get("/api/matches", **params)
        assert status == 200, answer
        return ids_of(answer, h)

    # The user was user1 or user2.
    assert await listed(userId=h.user["Cy"]) == ["m3", "m2", "m5"]
    assert await listed(userId="nobody") == []
    # matchedAt range, both ends inclusive.
    assert await listed(startTime="2024-01-15T10:00:00Z", endTime="2024-01-15T11:10:00Z") == ["m3", "m2", "m1"]
    assert await listed(startTime="2024-01-15T10:00:00.001Z", endTime="2024-01-15T10:59:59.999Z") == ["m2"]
    assert await listed(startTime="2024-01-15T12:00:00+01:00") == ["m4", "m3"]
    assert await listed(endTime="2024-01-15T10:00:00Z") == ["m1", "m5"]
    # Status; and the seed's "matches active at a specific time" (call started, not yet ended).
    assert await listed(status="ENDED") == ["m1"]
    assert await listed(status="PENDING") == ["m5"]
    assert await listed(activeAt="2024-01-15T11:00:30Z") == ["m2"]
    assert await listed(activeAt="2024-01-15T13:00:00Z") == ["m3"]
    assert await listed(activeAt="2024-01-15T11:05:00Z", status="SKIPPED") == []
    # The seed's "all matches in a session".
    assert await listed(sessionId="sA1") == ["m2", "m1"]
    assert await listed(sessionId="sC1", userId=h.user["Ann"]) == ["m2"]
    # Paging keeps the total of the whole query.
    status, answer = await mod.get("/api/matches", limit="2", offset="1")
    assert ids_of(answer, h) == ["m3", "m2"] and answer["total"] == 5
    status, answer = await mod.get("/api/matches", offset="5")
    assert answer["matches"] == [] and answer["total"] == 5
    # The time range echoes what was asked, in the contract's format.
    _, answer = await mod.get("/api/matches", startTime="2024-01-15T11:00:00+01:00", endTime="2024-01-31T23:59:59Z")
    assert answer["timeRange"] == {"start": "2024-01-15T10:00:00.000Z", "end": "2024-01-31T23:59:59.000Z"}
    # Nothing matches and no range was asked: no range to show.
    _, answer = await mod.get("/api/matches", status="ENDED", userId=h.user["Cy"])
    assert answer == {"matches": [], "total": 0, "timeRange": {"start": None, "end": None}}


async def test_a_user_sees_only_their_own_matches(history: History) -> None:
    h = history
    ann = h.api(h.user["Ann"])
    status, answer = await ann.get("/api/matches")
    assert status == 200 and ids_of(answer, h) == ["m4", "m2", "m1"] and answer["total"] == 3
    status, answer = await ann.get("/api/matches", userId=h.user["Ann"], status="SKIPPED")
    assert status == 200 and ids_of(answer, h) == ["m2"]
    # A session filter cannot reach matches the caller was not in.
    status, answer = await h.api(h.user["Cy"]).get("/api/matches", sessionId="sA1")
    assert ids_of(answer, h) == ["m2"]
    status, answer = await ann.get("/api/matches", userId=h.user["Bob"])
    assert status == 403 and answer["error"]["code"] == "forbidden"
    # Someone with no matches at all.
    status, answer = await h.api("newcomer").get("/api/matches")
    assert status == 200 and answer == {"matches": [], "total": 0, "timeRange": {"start": None, "end": None}}


async def test_one_match(history: History) -> None:
    h = history
    status, answer = await h.api(h.user["Bob"]).get(f"/api/matches/{h.match['m3']}")
    assert status == 200 and answer["match"]["id"] == h.match["m3"]
    assert answer["match"]["user1"] == {"id": h.user["Bob"], "name": "Bob"}
    assert answer["match"]["matchedTopics"] == ["go", "rust"] and answer["match"]["endedAt"] is None
    status, listed = await h.api("mod", Role.MODERATOR).get("/api/matches", userId=h.user["Bob"])
    assert answer["match"] == next(m for m in listed["matches"] if m["id"] == h.match["m3"])
    # Moderators see any match; someone who was not in it gets not_found, as for a missing one.
    status, answer = await h.api("mod", Role.MODERATOR).get(f"/api/matches/{h.match['m1']}")
    assert status == 200 and answer["match"]["status"] == "ENDED"
    for caller, match_id in [(h.user["Cy"], h.match["m1"]), (h.user["Ann"], "no-such-match"),
                             ("mod", "no-such-match"), (h.user["Ann"], "x" * 300), ("mod", "a%00b")]:
        role = Role.MODERATOR if caller == "mod" else Role.USER
        status, answer = await h.api(caller, role).get(f"/api/matches/{match_id}")
        assert status == 404 and answer["error"]["code"] == "not_found", (caller, match_id)
    status, answer = await h.api(h.user["Ann"]).get(f"/api/matches/{h.match['m1']}", verbose="1")
    assert status == 400 and answer["error"]["code"] == "invalid"


async def test_stats(history: History) -> None:
    h = history
    mod = h.api("mod", Role.MODERATOR)
    window = {"startTime": "2024-01-15T10:00:00Z", "endTime": "2024-01-15T12:00:00Z"}
    status, answer = await mod.get("/api/matches/stats", **window)
    assert status == 200, answer
    assert answer == {
        "totalMatches": 4,
        "activeMatches": 1,
        "endedMatches": 3,
        "averageDuration": 180.5,
        "matchesByMode": {"VIDEO": 3, "TEXT": 1},
        # m2 at 10:59:59.999 stays in the 10:00 bucket; m4 at exactly endTime joins the last bucket.
        "matchesByTimeRange": [
            {"time": "2024-01-15T10:00:00.000Z", "count": 2},
            {"time": "2024-01-15T11:00:00.000Z", "count": 2},
        ],
        "timeRange": {"start": "2024-01-15T10:00:00.000Z", "end": "2024-01-15T12:00:00.000Z"},
        "bucket": 3600,
    }
    _, answer = await mod.get("/api/matches/stats", bucket="1800", **window)
    assert [b["count"] for b in answer["matchesByTimeRange"]] == [1, 1, 1, 1]
    # A user's statistics cover their own matches only.
    _, answer = await h.api(h.user["Ann"]).get("/api/matches/stats", **window)
    assert answer["totalMatches"] == 3 and answer["activeMatches"] == 0 and answer["endedMatches"] == 3
    assert answer["averageDuration"] == 180.5 and answer["matchesByMode"] == {"VIDEO": 2, "TEXT": 1}
    assert [b["count"] for b in answer["matchesByTimeRange"]] == [2, 1]
    _, answer = await h.api(h.user["Bob"]).get("/api/matches/stats", startTime="2024-01-14T00:00:00Z",
                                              endTime="2024-01-16T00:00:00Z", bucket="86400")
    assert answer["totalMatches"] == 4 and answer["activeMatches"] == 2 and answer["averageDuration"] == 300
    assert answer["matchesByTimeRange"] == [{"time": "2024-01-14T00:00:00.000Z", "count": 1},
                                            {"time": "2024-01-15T00:00:00.000Z", "count": 3}]


async def test_stats_default_to_the_last_day(server, history: History) -> None:  # type: ignore[no-untyped-def]
    h = history
    now = utcnow()
    async with server.app[SESSIONS].begin() as s:
        s.add(Match(id=new_id(), user1_id=h.user["Ann"], user2_id=h.user["Cy"], mode=CallMode.TEXT,
                    status=MatchStatus.ENDED, matched_at=now - timedelta(minutes=90), started_at=now - timedelta(minutes=89),
                    ended_at=now - timedelta(minutes=80), duration=541, room_id=new_id(), matched_topics=[]))
        s.add(Match(id=new_id(), user1_id=h.user["Bob"], user2_id=h.user["Cy"], mode=CallMode.VIDEO,
                    status=MatchStatus.ENDED, matched_at=now - timedelta(hours=3, minutes=30),
                    started_at=now - timedelta(hours=3),
                    ended_at=now - timedelta(hours=2), duration=3600, room_id=new_id(), matched_topics=[]))
        s.add(Match(id=new_id(), user1_id=h.user["Bob"], user2_id=h.user["Ann"], mode=CallMode.VIDEO,
                    status=MatchStatus.ENDED, matched_at=now - timedelta(hours=4, minutes=30),
                    started_at=now - timedelta(hours=4),
                    ended_at=now - timedelta(hours=3), duration=100, room_id=new_id(), matched_topics=[]))
    status, answer = await h.api("mod", Role.MODERATOR).get("/api/matches/stats")
    assert status == 200, answer
    assert answer["totalMatches"] == 3 and answer["endedMatches"] == 3 and answer["activeMatches"] == 0
    # (541 + 3600 + 100) / 3 = 1413.666... -> 1413.7
    assert answer["averageDuration"] == 1413.7
    assert answer["matchesByMode"] == {"VIDEO": 2, "TEXT": 1}
    buckets = answer["matchesByTimeRange"]
    assert len(buckets) == 24 and sum(b["count"] for b in buckets) == 3
    assert [b["count"] for b in buckets][-5:] == [1, 1, 0, 1, 0]
    start = datetime.fromisoformat(answer["timeRange"]["start"].replace("Z", "+00:00"))
    assert abs((now - timedelta(hours=24) - start).total_seconds()) < 10
    # Nobody's matches in range: zeros, and the mean duration is 0.
    _, answer = await h.api("newcomer").get("/api/matches/stats")
    assert answer["totalMatches"] == 0 and answer["averageDuration"] == 0
    assert answer["matchesByMode"] == {"VIDEO": 0, "TEXT": 0} and len(answer["matchesByTimeRange"]) == 24


@pytest.mark.parametrize("path", ["/api/matches", "/api/matches/stats", "/api/matches/some-id"])
async def test_token_required(server, apis, path: str) -> None:  # type: ignore[no-untyped-def]
    status, answer = await apis().get(path)
    assert status == 401 and answer["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/matches", {"status": "active"}),
        ("/api/matches", {"status": "DONE"}),
        ("/api/matches", {"startTime": "yesterday"}),
        ("/api/matches", {"startTime": "2024-01-15T10:00:00"}),  # no timezone
        ("/api/matches", {"endTime": "2024-01-15"}),
        ("/api/matches", {"activeAt": "2024-01-15T10:00:00"}),
        ("/api/matches", {"startTime": "2024-01-15T11:00:00Z", "endTime": "2024-01-15T10:00:00Z"}),
        ("/api/matches", {"limit": "0"}),
        ("/api/matches", {"limit": "201"}),
        ("/api/matches", {"limit": "ten"}),
        ("/api/matches", {"offset": "-1"}),
        ("/api/matches", {"userId": ""}),
        ("/api/matches", {"userId": "u" * 65}),
        ("/api/matches", {"sessionId": ""}),
        ("/api/matches", {"userId": "a\x00b"}),  # PostgreSQL could not even take it
        ("/api/matches", {"sessionId": "\x00"}),
        ("/api/matches", {"sort": "asc"}),
        ("/api/matches/stats", {"startTime": "2024-01-15T10:00:00"}),
        ("/api/matches/stats", {"startTime": "2024-01-15T11:00:00Z", "endTime": "2024-01-15T10:00:00Z"}),
        ("/api/matches/stats", {"endTime": "0001-01-01T00:00:00Z"}),
        ("/api/matches/stats", {"bucket": "59"}),
        ("/api/matches/stats", {"bucket": "86401"}),
        ("/api/matches/stats", {"bucket": "1h"}),
        ("/api/matches/stats", {"bucket": "60"}),  # 1,440 buckets over the default day
        ("/api/matches/stats", {"userId": "someone"}),
        ("/api/matches/stats", {"status": "ENDED"}),
    ],
)
async def test_bad_query_is_invalid(server, apis, path: str, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for caller in (apis("mod", Role.MODERATOR), apis("plain")):
        status, answer = await caller.get(path, **params)
        assert status == 400 and answer["error"]["code"] == "invalid", answer


async def test_no_repeated_pair_within_a_session_over_real_matches(server, apis) -> None:  # type: ignore[no-untyped-def]
    """The seed's "verify no duplicate matches in a session", through the API, after real Socket.IO matches."""
    people: dict[str, SocketUser] = {}
    for name in ("Ann", "Bob", "Cy"):
        people[name] = await sign_in(server.url, name, ["rust"])
    by_id = {p.user_id: p for p in people.values()}
    ann, bob, cy = people["Ann"], people["Bob"], people["Cy"]
    made: list[str] = []

    async def end(match_id: str, who: SocketUser) -> None:
        assert (await who.call("match:end", {"matchId": match_id}))["ok"]
        for person in by_id.values():
            if any(f["matchId"] == match_id for f in person.received("match:found")):
                await person.wait_for("match:ended", lambda d: d["matchId"] == match_id)

    try:
        # Ann and Bob meet and talk.
        assert (await ann.call("queue:join", {"mode": "video"}))["ok"]
        first = await bob.call("queue:join", {"mode": "video"})
        made.append(first["matchId"])
        for person in (ann, bob):
            assert (await person.call("match:join", {"matchId": first["matchId"]}))["ok"]
        await bob.wait_for("match:started")
        await end(first["matchId"], ann)
        # In the same sessions Ann and Bob wait again but are not paired; Cy takes one of them.
        assert "matchId" not in await ann.call("queue:join", {"mode": "video"})
        assert "matchId" not in await bob.call("queue:join", {"mode": "video"})
        second = await cy.call("queue:join", {"mode": "video"})
        made.append(second["matchId"])
        found = await cy.wait_for("match:found", lambda d: d["matchId"] == second["matchId"])
        partner = by_id[found["partner"]["id"]]
        left = bob if partner is ann else ann
        await end(second["matchId"], cy)
        # Cy comes back and meets the one still waiting.
        third = await cy.call("queue:join", {"mode": "video"})
        made.append(third["matchId"])
        found = await cy.wait_for("match:found", lambda d: d["matchId"] == third["matchId"])
        assert found["partner"]["id"] == left.user_id
        await end(third["matchId"], left)
        # Everyone has met everyone in this session: nobody is paired again.
        for person in (partner, left, cy):
            assert "matchId" not in await person.call("queue:join", {"mode": "video"})
        for person in (partner, left, cy):
            assert (await person.call("queue:leave"))["ok"]

        mod = apis("mod", Role.MODERATOR)
        status, everything = await mod.get("/api/matches")
        assert status == 200 and {m["id"] for m in everything["matches"]} == set(made)
        assert all(m["status"] == "ENDED" for m in everything["matches"])
        assert everything["matches"][-1]["duration"] is not None and everything["matches"][-1]["startedAt"]
        sessions = {m["user1SessionId"] for m in everything["matches"]} | {
            m["user2SessionId"] for m in everything["matches"]}
        assert len(sessions) == 3 and None not in sessions  # one session each, all three rounds
        for session_id in sessions:
            status, answer = await mod.get("/api/matches", sessionId=session_id)
            assert status == 200 and answer["total"] == 2  # each person met the two others once
            # The seed's query: group by (user1SessionId, user2SessionId, user1Id, user2Id) HAVING COUNT(*) > 1.
            groups = Counter((m["user1SessionId"], m["user2SessionId"], m["user1Id"], m["user2Id"])
                             for m in answer["matches"])
            assert [g for g, n in groups.items() if n > 1] == []
            # Stricter: no unordered pair of people repeats within the session.
            pairs = Counter(frozenset((m["user1Id"], m["user2Id"])) for m in answer["matches"])
            assert all(n == 1 for n in pairs.values())
            # Ordered by matchedAt, the session's matches are all there.
            assert sorted(m["matchedAt"] for m in answer["matches"]) == [
                m["matchedAt"] for m in reversed(answer["matches"])]
        # Each person sees their own two matches through their own token.
        for person in people.values():
            caller = apis(person.user_id)
            status, mine = await caller.get("/api/matches")
            assert status == 200 and mine["total"] == 2
            status, stats_answer = await caller.get("/api/matches/stats")
            assert stats_answer["totalMatches"] == 2 and stats_answer["endedMatches"] == 2
    finally:
        for person in people.values():
            await person.close()
