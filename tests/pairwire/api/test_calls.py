"""REST sessions and queue: the seed's shapes, over the same service as the Socket.IO events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.api import Api
from tests.support.clients import SocketUser, sign_in


@pytest.fixture
async def people(server) -> AsyncIterator[list[tuple[SocketUser, Api]]]:  # type: ignore[no-untyped-def]
    made: list[tuple[SocketUser, Api]] = []

    async def make(name: str, topics: list[str]) -> tuple[SocketUser, Api]:
        user = await sign_in(server.url, name, topics)
        pair = (user, Api(server.url, user.token))
        made.append(pair)
        return pair

    yield [await make("Ann", ["rust"]), await make("Bob", ["rust"])]
    for user, api in made:
        await user.close()
        await api.close()


async def test_session_lifecycle(people) -> None:  # type: ignore[no-untyped-def]
    _, api = people[0]
    assert await api.get("/api/session/current") == (200, {"session": None})
    status, started = await api.post("/api/session/start", {"mode": "video"})
    assert status == 200 and started["success"] is True
    session = started["session"]
    assert session["sessionId"] == started["sessionId"] and session["isActive"] is True
    assert session["matchedUserIds"] == [] and session["startedAt"].endswith("Z")
    status, current = await api.get("/api/session/current")
    assert current["session"]["sessionId"] == started["sessionId"] and current["session"]["matchCount"] == 0
    # Starting again ends the first one.
    _, second = await api.post("/api/session/start")
    status, history = await api.get("/api/session/history")
    assert history["total"] == 2
    assert [s["sessionId"] for s in history["sessions"]] == [second["sessionId"], started["sessionId"]]
    assert history["sessions"][1]["isActive"] is False and history["sessions"][1]["endedAt"]
    status, page = await api.get("/api/session/history", limit=1, offset=1)
    assert [s["sessionId"] for s in page["sessions"]] == [started["sessionId"]] and page["total"] == 2

    status, wrong = await api.post("/api/session/end", {"sessionId": started["sessionId"]})
    assert status == 404 and wrong["error"]["code"] == "not_found"
    assert await api.post("/api/session/end", {"sessionId": second["sessionId"]}) == (200, {"success": True})
    assert await api.get("/api/session/current") == (200, {"session": None})


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "/api/session/history", {"limit": "0"}),
        ("get", "/api/session/history", {"limit": "101"}),
        ("get", "/api/session/history", {"limit": "ten"}),
        ("get", "/api/session/history", {"offset": "-1"}),
        ("get", "/api/session/history", {"sort": "asc"}),
        ("post", "/api/session/end", {}),
        ("post", "/api/session/start", {"mode": "audio"}),
        ("post", "/api/match/join", {}),
        ("post", "/api/match/join", {"mode": "VIDEO"}),
        ("post", "/api/match/join", {"mode": "video", "extra": 1}),
    ],
)
async def test_bad_input_is_invalid(people, method: str, path: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    _, api = people[0]
    status, answer = await (api.get(path, **payload) if method == "get" else api.post(path, payload))
    assert status == 400 and answer["error"]["code"] == "invalid", answer


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/session/start"), ("get", "/api/session/current"), ("get", "/api/session/history"),
     ("post", "/api/match/join"), ("post", "/api/match/leave"), ("get", "/api/match/status")],
)
async def test_token_required(server, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, json={}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_rest_join_matches_with_a_socket_user(people) -> None:  # type: ignore[no-untyped-def]
    (ann, ann_api), (bob, bob_api) = people
    status, joined = await ann_api.post("/api/match/join", {"mode": "video"})
    assert status == 200 and joined["success"] and joined["queuePosition"] == 1
    status, info = await ann_api.get("/api/match/status")
    assert info == {"inQueue": True, "queuePosition": 1, "sessionId": joined["sessionId"], "previouslyMatchedUsers": []}
    assert (await bob.call("queue:join", {"mode": "video"}))["ok"]
    found = await ann.wait_for("match:found")
    status, info = await ann_api.get("/api/match/status")
    assert info["inQueue"] is False and info["matchId"] == found["matchId"] and info["roomId"] == found["roomId"]
    assert info["previouslyMatchedUsers"] == [bob.user_id]
    status, conflict = await ann_api.post("/api/match/leave")
    assert status == 409 and conflict["error"]["code"] == "conflict" and conflict["matchId"] == found["matchId"]
    status, conflict = await ann_api.post("/api/match/join", {"mode": "text"})
    assert status == 409 and conflict["matchId"] == found["matchId"]


async def test_rest_leave(people) -> None:  # type: ignore[no-untyped-def]
    (_, ann_api), (bob, _) = people
    await ann_api.post("/api/match/join", {"mode": "text"})
    assert await ann_api.post("/api/match/leave") == (200, {"success": True})
    _, info = await ann_api.get("/api/match/status")
    assert info["inQueue"] is False
    assert "matchId" not in await bob.call("queue:join", {"mode": "text"})
