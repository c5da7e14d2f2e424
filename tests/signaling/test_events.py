"""Every event of the contract over a real server and real Socket.IO clients, time driven by a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import select

from matching.calls import EXHAUSTED_MESSAGE
from matching.clock import ManualClock
from matching.identity import Identity, Role
from matching.store.database import session_factory
from pairwire.app import CALLS
from matching.store.models import ActivityStatus, ChatMessage, Match, UserActivity, UserSession
from tests.support.api import Api
from tests.support.clients import SocketUser, sign_in


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def clients(server) -> AsyncIterator[list[SocketUser]]:  # type: ignore[no-untyped-def]
    made: list[SocketUser] = []
    yield made
    for client in made:
        await client.close()


async def _user(server, clients, name: str, topics=None, seniority=None) -> SocketUser:  # type: ignore[no-untyped-def]
    client = await sign_in(server.url, name, topics, seniority)
    clients.append(client)
    await server.app[CALLS]._clock.advance(0.1)  # ONLINE is stored before the client is connected
    return client


async def _stored(server, match_id: str) -> Match:  # type: ignore[no-untyped-def]
    async with session_factory(server.db.engine)() as s:
        return (await s.execute(select(Match).where(Match.id == match_id))).scalar_one()


async def _pair(server, clients, topics=("rust",)):  # type: ignore[no-untyped-def]
    a = await _user(server, clients, "Ann", list(topics))
    b = await _user(server, clients, "Bob", list(topics))
    first = await a.call("queue:join", {"mode": "video"})
    assert first["ok"] and first["queuePosition"] == 1
    await server.app[CALLS]._clock.advance(0.5)  # Ann has waited longer: she is the initiator
    second = await b.call("queue:join", {"mode": "video"})
    assert second["ok"] and second["matchId"]
    found_a = await a.wait_for("match:found")
    found_b = await b.wait_for("match:found")
    return a, b, found_a, found_b


async def _until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (really) until the server has processed something the client cannot see, e.g. a disconnect."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _stored_once(server, read, condition, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """What `read` finds in the store once `condition` holds of it (activity rows are written in batches)."""
    for _ in range(int(timeout / 0.01)):
        await server.app[CALLS].writer.flush()
        found = await read()
        if condition(found):
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"the store never reached the state expected; last read: {found!r}")


def _time(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_match_found_both_sides(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, b, found_a, found_b = await _pair(server, clients, topics=("rust", "go"))
    assert found_a["matchId"] == found_b["matchId"] and found_a["roomId"] == found_b["roomId"]
    assert {found_a["initiator"], found_b["initiator"]} == {True, False}
    assert found_a["initiator"] is True  # waited longer
    assert found_a["partner"] == {"id": b.user_id, "displayName": "Bob"}
    assert found_b["partner"] == {"id": a.user_id, "displayName": "Ann"}
    assert found_a["matchedTopics"] == ["go", "rust"] and found_a["mode"] == "video"
    assert found_a["iceServers"] == [] and found_b["iceServers"] == []
    match = await _stored(server, found_a["matchId"])
    assert match.status.value == "PENDING" and match.user1_id == a.user_id and match.user2_id == b.user_id
    assert match.user1_session_id and match.user2_session_id and match.matched_topics == ["go", "rust"]


async def test_join_start_signal_end_timeline(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    match_id = found["matchId"]
    await clock.advance(1.0)
    assert (await a.call("match:join", {"matchId": match_id}))["ok"]
    await clock.advance(1.5)
    assert (await b.call("match:join", {"matchId": match_id}))["ok"]
    started_a = await a.wait_for("match:started")
    started_b = await b.wait_for("match:started")
    assert started_a == started_b and started_a["matchId"] == match_id

    offer = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}
    assert (await a.call("signal", {"matchId": match_id, "kind": "offer", "data": offer}))["ok"]
    relayed = await b.wait_for("signal")
    assert relayed == {"matchId": match_id, "from": a.user_id, "kind": "offer", "data": offer}
    candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    assert (await b.call("signal", {"matchId": match_id, "kind": "candidate", "data": candidate}))["ok"]
    assert (await a.wait_for("signal"))["data"] == candidate
    assert a.received("signal")[0]["from"] == b.user_id

    await clock.advance(62.4)
    assert (await b.call("match:end", {"matchId": match_id}))["ok"]
    ended_a = await a.wait_for("match:ended")
    ended_b = await b.wait_for("match:ended")
    assert ended_a == ended_b
    assert ended_a["status"] == "ENDED" and ended_a["endedBy"] == b.user_id and ended_a["duration"] == 62

    match = await _stored(server, match_id)
    assert match.status.value == "ENDED" and match.ended_by == b.user_id and match.duration == 62
    assert match.matched_at < match.user1_joined_at < match.user2_joined_at == match.started_at < match.ended_at
    assert _time(started_a["startedAt"]) == match.started_at
    assert _time(ended_a["endedAt"]) == match.ended_at

    refused = await a.call("signal", {"matchId": match_id, "kind": "offer", "data": offer})
    assert refused["ok"] is False and refused["error"]["code"] == "conflict"
    again = await a.call("match:end", {"matchId": match_id})
    assert again["error"]["code"] == "conflict"


async def test_skip(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    assert (await b.call("match:skip", {"matchId": found["matchId"]}))["ok"]
    ended = await a.wait_for("match:ended")
    assert ended["status"] == "SKIPPED" and ended["endedBy"] == b.user_id and ended["duration"] is None
    assert (await _stored(server, found["matchId"])).status.value == "SKIPPED"


async def test_timeout_when_not_both_join(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    assert (await a.call("match:join", {"matchId": found["matchId"]}))["ok"]
    await clock.advance(29.9)
    assert a.received("match:ended") == []
    await clock.advance(0.2)
    ended = await b.wait_for("match:ended")
    assert ended["status"] == "TIMEOUT" and ended["endedBy"] is None and ended["duration"] is None
    match = await _stored(server, found["matchId"])
    assert match.status.value == "TIMEOUT" and match.user1_joined_at is not None and match.started_at is None


async def test_no_timeout_once_started(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    for c in (a, b):
        assert (await c.call("match:join", {"matchId": found["matchId"]}))["ok"]
    await clock.advance(120)
    assert (await _stored(server, found["matchId"])).status.value == "ACTIVE"
    assert a.received("match:ended") == []


async def test_strangers_are_refused(server, clients) -> None:  # type: ignore[no-untyped-def]
    _, _, found, _ = await _pair(server, clients)
    eve = await _user(server, clients, "Eve")
    for event, payload in [
        ("match:join", {"matchId": found["matchId"]}),
        ("match:end", {"matchId": found["matchId"]}),
        ("match:skip", {"matchId": found["matchId"]}),
        ("signal", {"matchId": found["matchId"], "kind": "offer", "data": {}}),
        ("chat:send", {"matchId": found["matchId"], "text": "hi"}),
        ("chat:typing", {"matchId": found["matchId"], "typing": True}),
    ]:
        answer = await eve.call(event, payload)
        assert answer["ok"] is False and answer["error"]["code"] == "not_found", (event, answer)
    missing = await eve.call("match:join", {"matchId": "no-such-match"})
    assert missing["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("queue:join", {}),
        ("queue:join", {"mode": "audio"}),
        ("queue:join", {"mode": "video", "topics": "rust"}),
        ("queue:join", ["video"]),
        ("queue:join", "video"),
        ("match:join", {}),
        ("match:join", {"matchId": ""}),
        ("signal", {"matchId": "m", "kind": "hello", "data": {}}),
        ("chat:send", {"matchId": "m"}),
        ("chat:typing", {"matchId": "m", "typing": "yes"}),
        ("no:such:event", {}),
    ],
)
async def test_bad_payloads_get_invalid(server, clients, event: str, payload: object) -> None:  # type: ignore[no-untyped-def]
    user = await _user(server, clients, "Val")
    answer = await user.call(event, payload)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid" and answer["error"]["message"]
    assert user.sio.connected


async def test_big_messages_are_answered_not_dropped(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, _, found, _ = await _pair(server, clients)
    answer = await a.call("signal", {"matchId": found["matchId"], "kind": "offer", "data": {"sdp": "x" * 900_000}})
    assert answer["error"]["code"] == "too_large"
    answer = await a.call("chat:send", {"matchId": found["matchId"], "text": "y" * 2001})
    assert answer["error"]["code"] == "too_large"
    assert a.sio.connected and (await a.call("chat:typing", {"matchId": found["matchId"], "typing": False}))["ok"]


async def test_chat_and_typing(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    match_id = found["matchId"]
    assert (await a.call("chat:typing", {"matchId": match_id, "typing": True}))["ok"]
    assert await b.wait_for("chat:typing") == {"matchId": match_id, "from": a.user_id, "typing": True}
    text = "<b>hello</b> & welcome " + "é" * 1000
    sent = await a.call("chat:send", {"matchId": match_id, "text": text})
    assert sent["ok"] and sent["message"]["id"] and sent["message"]["sentAt"].endswith("Z")
    got = await b.wait_for("chat:message")
    assert got == {"matchId": match_id, "id": sent["message"]["id"], "from": a.user_id, "text": text,
                   "sentAt": sent["message"]["sentAt"]}
    assert a.received("chat:message") == []
    empty = await a.call("chat:send", {"matchId": match_id, "text": "   "})
    assert empty["error"]["code"] == "invalid"
    async with session_factory(server.db.engine)() as s:
        stored = (await s.execute(select(ChatMessage))).scalars().all()
    assert [(m.match_id, m.sender_id, m.text) for m in stored] == [(match_id, a.user_id, text)]


@pytest.mark.parametrize("settings_overrides", [{"chat_rate": "3/minute"}])
async def test_chat_rate_limit(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, _, found, _ = await _pair(server, clients)
    for i in range(3):
        assert (await a.call("chat:send", {"matchId": found["matchId"], "text": f"m{i}"}))["ok"]
    limited = await a.call("chat:send", {"matchId": found["matchId"], "text": "one more"})
    assert limited["ok"] is False and limited["error"]["code"] == "rate_limited"
    assert 1 <= limited["retryAfter"] <= 60


async def test_leave_then_never_matched(server, clients) -> None:  # type: ignore[no-untyped-def]
    a = await _user(server, clients, "Ann", ["rust"])
    b = await _user(server, clients, "Bob", ["rust"])
    assert (await a.call("queue:join", {"mode": "video"}))["ok"]
    assert await a.call("queue:leave") == {"ok": True}
    joined = await b.call("queue:join", {"mode": "video"})
    assert joined["ok"] and "matchId" not in joined and joined["queuePosition"] == 1
    assert a.received("match:found") == [] and b.received("match:found") == []
    assert await a.call("queue:leave") == {"ok": True}  # not waiting: nothing to do


async def test_leave_after_match_is_a_conflict_that_arrives_after_match_found(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    answer = await a.call("queue:leave")
    assert answer["ok"] is False and answer["error"]["code"] == "conflict" and answer["matchId"] == found["matchId"]
    busy = await a.call("queue:join", {"mode": "video"})
    assert busy["error"]["code"] == "conflict" and busy["matchId"] == found["matchId"]


async def test_modes_do_not_mix(server, clients) -> None:  # type: ignore[no-untyped-def]
    a = await _user(server, clients, "Ann", ["rust"])
    b = await _user(server, clients, "Bob", ["rust"])
    assert (await a.call("queue:join", {"mode": "video"}))["ok"]
    assert "matchId" not in await b.call("queue:join", {"mode": "text"})
    c = await _user(server, clients, "Cy", ["rust"])
    assert (await c.call("queue:join", {"mode": "text"}))["matchId"]
    assert (await c.wait_for("match:found"))["partner"]["id"] == b.user_id


async def test_exhausted_then_a_new_session_allows_meeting_again(server, clients) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    assert (await a.call("match:end", {"matchId": found["matchId"]}))["ok"]
    await b.wait_for("match:ended")
    again_a = await a.call("queue:join", {"mode": "video"})
    assert again_a["previouslyMatchedCount"] == 1
    again_b = await b.call("queue:join", {"mode": "video", "sessionId": again_a["sessionId"]})
    assert again_b["error"]["code"] == "not_found"  # not B's session
    again_b = await b.call("queue:join", {"mode": "video"})
    assert "matchId" not in again_b
    exhausted = await b.wait_for("queue:exhausted")
    assert exhausted == {"message": EXHAUSTED_MESSAGE, "excludedCount": 1}
    async with session_factory(server.db.engine)() as s:
        rows = (await s.execute(select(UserSession).where(UserSession.user_id == b.user_id))).scalars().all()
    assert [r.matched_user_ids for r in rows] == [[a.user_id]]
    # B starts a new session, but A's session still holds B: checked both ways, they still don't meet.
    assert (await b.call("queue:leave"))["ok"]
    calls = server.app[CALLS]
    await calls.end_session(Identity(b.user_id, Role.USER))
    assert "matchId" not in await b.call("queue:join", {"mode": "video"})
    assert len(b.received("queue:exhausted")) == 2
    # Once A starts a new session too, they can meet again.
    assert (await b.call("queue:leave"))["ok"]
    await calls.end_session(Identity(a.user_id, Role.USER))
    assert (await a.call("queue:join", {"mode": "video"}))["previouslyMatchedCount"] == 0
    rematch = await b.call("queue:join", {"mode": "video"})
    assert rematch["matchId"] != found["matchId"]


async def test_fallback_after_30_seconds(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a = await _user(server, clients, "Ann", ["rust"], "intern")
    b = await _user(server, clients, "Bob", ["cooking"], "principal")
    assert "matchId" not in await a.call("queue:join", {"mode": "text"})
    await clock.advance(10)
    assert "matchId" not in await b.call("queue:join", {"mode": "text"})
    await clock.advance(19.9)
    assert a.received("match:found") == []
    await clock.advance(0.2)
    found = await b.wait_for("match:found")
    assert found["partner"]["id"] == a.user_id and found["matchedTopics"] == [] and found["initiator"] is False


async def test_blocked_users_never_meet(server, clients) -> None:  # type: ignore[no-untyped-def]
    a = await _user(server, clients, "Ann", ["rust"])
    b = await _user(server, clients, "Bob", ["rust"])
    # Both are connected (the server holds what their joins need) when Bob blocks Ann.
    bob_api = Api(server.url, b.token)
    try:
        assert (await bob_api.post("/api/blocks", {"userId": a.user_id}))[0] == 201
    finally:
        await bob_api.close()
    assert (await a.call("queue:join", {"mode": "video"}))["ok"]
    assert "matchId" not in await b.call("queue:join", {"mode": "video"})
    assert (await b.wait_for("queue:exhausted"))["excludedCount"] == 1


async def test_activity_rows_follow_the_user(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    await clock.advance(1)
    assert (await a.call("match:end", {"matchId": found["matchId"]}))["ok"]
    await b.wait_for("match:ended")
    await server.app[CALLS].writer.flush()  # what a REST read does first
    async with session_factory(server.db.engine)() as s:
        rows = (
            await s.execute(select(UserActivity).where(UserActivity.user_id == a.user_id).order_by(UserActivity.joined_at))
        ).scalars().all()
    statuses = [r.status for r in rows]
    assert statuses == [ActivityStatus.ONLINE, ActivityStatus.SEARCHING, ActivityStatus.IN_CALL, ActivityStatus.ONLINE]
    assert rows[1].mode is not None and rows[1].mode.value == "VIDEO"
    for earlier, later in zip(rows, rows[1:]):
        assert earlier.last_seen == later.joined_at


async def test_resume_within_grace_and_end_past_it(server, clients, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    a, b, found, _ = await _pair(server, clients)
    match_id = found["matchId"]
    for c in (a, b):
        assert (await c.call("match:join", {"matchId": match_id}))["ok"]
    await a.close()
    await _until(lambda: server.app[CALLS].in_grace(a.user_id))
    await clock.advance(10)
    back = SocketUser(server.url, a.token, a.user_id, "Ann")
    clients.append(back)
    await back.connect()
    again = await back.wait_for("match:found")
    assert again["matchId"] == match_id and again["initiator"] is True
    assert found["startedAt"] is None
    assert _time(again["startedAt"]) == (await _stored(server, match_id)).started_at
    await b.wait_for("match:found", lambda d: len(b.received("match:found")) == 2)
    assert [f["matchId"] for f in b.received("match:found")] == [match_id, match_id]
    await clock.advance(30)
    assert (await _stored(server, match_id)).status.value == "ACTIVE"

    await back.close()
    await _until(lambda: server.app[CALLS].in_grace(a.user_id))
    await clock.advance(14.9)
    assert b.received("match:ended") == []
    await clock.advance(0.2)
    ended = await b.wait_for("match:ended")
    assert ended["status"] == "ENDED" and ended["endedBy"] == a.user_id and ended["duration"] == 55

    async def read():  # type: ignore[no-untyped-def]
        async with session_factory(server.db.engine)() as s:
            session_rows = (await s.execute(select(UserSession).where(UserSession.user_id == a.user_id))).scalars().all()
            last = (
                await s.execute(
                    select(UserActivity).where(UserActivity.user_id == a.user_id).order_by(UserActivity.joined_at.desc())
                )
            ).scalars().first()
        return session_rows, last

    # Ann's session ends and she goes OFFLINE right after match:ended reaches Bob.
    session_rows, last = await _stored_once(server, read, lambda found: found[1].status is ActivityStatus.OFFLINE)
    assert session_rows and all(not r.is_active and r.ended_at is not None for r in session_rows)


async def test_binary_signal_data_takes_the_generic_path(server, clients) -> None:  # type: ignore[no-untyped-def]
    # JSON data goes out through the notifier's fast path; binary attachments cannot, and must
    # still arrive untouched.
    a, b, found, _ = await _pair(server, clients)
    blob = bytes(range(256))
    assert (await a.call("signal", {"matchId": found["matchId"], "kind": "candidate", "data": {"blob": blob}}))["ok"]
    relayed = await b.wait_for("signal")
    assert relayed["data"] == {"blob": blob} and relayed["from"] == a.user_id
