"""Flags saved at once, completed by the flagger, reviewed by moderators; blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select

from matching.clock import ManualClock
from matching.identity import Role
from matching.store.database import session_factory
from matching.store.models import Flag, FlagAudit, Match
from pairwire.api.http import TOKENS
from tests.support.api import Api
from tests.support.clients import SocketUser, sign_in


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> ManualClock | None:
    """The real clock, or a ManualClock for tests parametrized with "manual"."""
    return ManualClock() if getattr(request, "param", None) == "manual" else None


@pytest.fixture
async def world(server) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Ann and Bob in an open match, Cy who met nobody, a moderator."""
    users: list[SocketUser] = []
    apis: list[Api] = []
    for name in ("Ann", "Bob", "Cy"):
        users.append(await sign_in(server.url, name, ["rust"]))
        apis.append(Api(server.url, users[-1].token))
    ann, bob, cy = users
    assert (await ann.call("queue:join", {"mode": "video"}))["ok"]
    joined = await bob.call("queue:join", {"mode": "video"})
    moderator = Api(server.url, server.app[TOKENS].mint("mod-1", Role.MODERATOR, name="Mod"))
    yield {"ann": ann, "bob": bob, "cy": cy, "api": dict(zip(("ann", "bob", "cy"), apis)), "mod": moderator,
           "match": joined["matchId"]}
    for user in users:
        await user.close()
    for api in [*apis, moderator]:
        await api.close()


async def _stored_flags(server) -> list[Flag]:  # type: ignore[no-untyped-def]
    async with session_factory(server.db.engine)() as s:
        return list((await s.execute(select(Flag))).scalars())


async def test_flag_is_saved_before_the_reason(server, world) -> None:  # type: ignore[no-untyped-def]
    before = datetime.now(timezone.utc)
    status, body, _ = await world["api"]["ann"].call(
        "POST", "/api/flags", {"flaggedUserId": world["bob"].user_id, "matchId": world["match"], "reason": ""}
    )
    assert status == 201 and body["success"] is True
    flag = body["flag"]
    assert flag["flaggedById"] == world["ann"].user_id and flag["flaggedUserId"] == world["bob"].user_id
    assert flag["status"] == "PENDING" and flag["reason"] == "" and flag["matchId"] == world["match"]
    flagged_at = datetime.fromisoformat(flag["flaggedAt"].replace("Z", "+00:00"))
    assert abs((flagged_at - before).total_seconds()) < 5
    stored = await _stored_flags(server)
    assert [(f.id, f.reason, f.flagged_at) for f in stored] == [(flag["id"], "", flagged_at)]


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("ann", {"flaggedUserId": "SELF"}, 400, "invalid"),
        ("ann", {"flaggedUserId": "CY", "matchId": "MATCH"}, 400, "invalid"),
        ("cy", {"flaggedUserId": "BOB", "matchId": "MATCH"}, 404, "not_found"),
        ("cy", {"flaggedUserId": "BOB"}, 403, "forbidden"),
        ("ann", {"flaggedUserId": "nobody-at-all"}, 404, "not_found"),
        ("ann", {"flaggedUserId": "BOB", "matchId": "MATCH", "category": "RUDE"}, 400, "invalid"),
        ("ann", {"flaggedUserId": "BOB", "matchId": "MATCH", "reason": "x" * 2001}, 400, "invalid"),
        ("ann", {"flaggedUserId": "BOB", "matchId": "MATCH", "endCall": "yes"}, 400, "invalid"),
        ("ann", {"matchId": "MATCH"}, 400, "invalid"),
    ],
)
async def test_flag_rules(server, world, who: str, body: dict, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    ids = {"SELF": world[who].user_id, "CY": world["cy"].user_id, "BOB": world["bob"].user_id, "MATCH": world["match"]}
    payload = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    got, answer, _ = await world["api"][who].call("POST", "/api/flags", payload)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert await _stored_flags(server) == []


@pytest.mark.parametrize("settings_overrides", [{"flags_per_hour": 2}])
async def test_flags_per_hour(server, world) -> None:  # type: ignore[no-untyped-def]
    body = {"flaggedUserId": world["bob"].user_id, "matchId": world["match"]}
    for _ in range(2):
        assert (await world["api"]["ann"].call("POST", "/api/flags", body))[0] == 201
    status, answer, headers = await world["api"]["ann"].call("POST", "/api/flags", body)
    assert status == 429 and answer["error"]["code"] == "rate_limited"
    assert 3590 <= answer["retryAfter"] <= 3600 and headers["Retry-After"] == str(answer["retryAfter"])
    assert len(await _stored_flags(server)) == 2


async def test_reason_then_review_with_audit_trail(server, world) -> None:  # type: ignore[no-untyped-def]
    ann, bob, mod = world["api"]["ann"], world["api"]["bob"], world["mod"]
    _, raised, _ = await ann.call("POST", "/api/flags", {"flaggedUserId": world["bob"].user_id, "matchId": world["match"]})
    flag_id = raised["flag"]["id"]
    path = f"/api/flags/{flag_id}"

    status, short, _ = await ann.call("PATCH", path, {"reason": "too short"})
    assert status == 400 and "10" in short["error"]["message"]
    script = "<script>alert('x')</script> kept as plain text"
    status, done, _ = await ann.call("PATCH", path, {"reason": script, "category": "HARASSMENT"})
    assert status == 200 and done["flag"]["reason"] == script and done["flag"]["category"] == "HARASSMENT"
    assert done["flag"]["flaggedAt"] == raised["flag"]["flaggedAt"]  # the time of the press stays

    assert (await bob.call("PATCH", path, {"reason": "I want to change it"}))[0] == 404
    assert (await ann.call("PATCH", path, {"status": "RESOLVED"}))[0] == 403
    assert (await ann.call("PATCH", path, {}))[0] == 400
    assert (await mod.call("PATCH", path, {"status": "PENDING"}))[0] == 400
    assert (await mod.call("PATCH", path, {"reason": "a moderator's words"}))[0] == 403

    status, reviewed, _ = await mod.call("PATCH", path, {"status": "RESOLVED", "adminNotes": "warned the user"})
    assert status == 200
    assert reviewed["flag"]["status"] == "RESOLVED" and reviewed["flag"]["reviewedBy"] == "mod-1"
    assert reviewed["flag"]["reviewedAt"] and reviewed["flag"]["adminNotes"] == "warned the user"

    status, detail, _ = await mod.call("GET", path)
    assert [(e["actorId"], e["action"]) for e in detail["audit"]] == [
        (world["ann"].user_id, "create"), (world["ann"].user_id, "reason"), ("mod-1", "review"),
    ]
    assert detail["audit"][2]["changes"]["status"] == {"from": "PENDING", "to": "RESOLVED"}
    assert detail["flag"]["flaggedBy"] == {"id": world["ann"].user_id, "name": "Ann"}
    assert detail["flag"]["flaggedUser"] == {"id": world["bob"].user_id, "name": "Bob"}
    assert (await ann.call("GET", path))[0] == 200
    assert (await bob.call("GET", path))[0] == 404
    async with session_factory(server.db.engine)() as s:
        assert len((await s.execute(select(FlagAudit))).scalars().all()) == 3


async def test_moderator_queue(server, world) -> None:  # type: ignore[no-untyped-def]
    ann, bob, mod = world["api"]["ann"], world["api"]["bob"], world["mod"]
    await ann.call("POST", "/api/flags", {"flaggedUserId": world["bob"].user_id, "matchId": world["match"]})
    _, second, _ = await bob.call("POST", "/api/flags", {"flaggedUserId": world["ann"].user_id})
    await mod.call("PATCH", f"/api/flags/{second['flag']['id']}", {"status": "DISMISSED"})

    status, denied, _ = await ann.call("GET", "/api/flags")
    assert status == 403 and denied["error"]["code"] == "forbidden"
    status, everything, _ = await mod.call("GET", "/api/flags")
    assert status == 200 and everything["total"] == 2
    assert {f["flaggedBy"]["name"] for f in everything["flags"]} == {"Ann", "Bob"}
    _, pending, _ = await mod.call("GET", "/api/flags", status="PENDING")
    assert [f["flaggedById"] for f in pending["flags"]] == [world["ann"].user_id] and pending["total"] == 1
    _, by_match, _ = await mod.call("GET", "/api/flags", matchId=world["match"])
    assert by_match["total"] == 1
    _, by_user, _ = await mod.call("GET", "/api/flags", userId=world["cy"].user_id)
    assert by_user["total"] == 0
    _, page, _ = await mod.call("GET", "/api/flags", limit="1", offset="1")
    assert len(page["flags"]) == 1 and page["total"] == 2
    for bad in ({"status": "OPEN"}, {"limit": "0"}, {"sort": "x"}):
        assert (await mod.call("GET", "/api/flags", **bad))[0] == 400


async def test_end_call_ends_the_match_for_both(server, world) -> None:  # type: ignore[no-untyped-def]
    await world["ann"].wait_for("match:found")
    status, _, _ = await world["api"]["ann"].call(
        "POST", "/api/flags", {"flaggedUserId": world["bob"].user_id, "matchId": world["match"], "endCall": True}
    )
    assert status == 201
    ended = await world["bob"].wait_for("match:ended")
    assert ended["status"] == "ENDED" and ended["endedBy"] == world["ann"].user_id


async def test_flagged_users_never_meet_again_in_any_session(server, world) -> None:  # type: ignore[no-untyped-def]
    ann, bob = world["ann"], world["bob"]
    await world["api"]["ann"].call("POST", "/api/flags", {"flaggedUserId": bob.user_id, "matchId": world["match"]})
    assert (await ann.call("match:end", {"matchId": world["match"]}))["ok"]
    for api in (world["api"]["ann"], world["api"]["bob"]):
        assert (await api.call("POST", "/api/session/start", {}))[0] == 200
    assert "matchId" not in await ann.call("queue:join", {"mode": "video"})
    assert "matchId" not in await bob.call("queue:join", {"mode": "video"})
    assert (await bob.wait_for("queue:exhausted"))["excludedCount"] == 1


async def test_a_flag_raised_while_waiting_applies_at_once(server, world) -> None:  # type: ignore[no-untyped-def]
    ann, bob = world["ann"], world["bob"]
    assert (await ann.call("match:end", {"matchId": world["match"]}))["ok"]
    for api in (world["api"]["ann"], world["api"]["bob"]):
        await api.call("POST", "/api/session/start", {})
    assert (await ann.call("queue:join", {"mode": "video"}))["ok"]  # Ann waits with a clean slate
    await world["api"]["bob"].call("POST", "/api/flags", {"flaggedUserId": ann.user_id, "matchId": world["match"]})
    assert "matchId" not in await bob.call("queue:join", {"mode": "video"})


async def test_blocks(server, world) -> None:  # type: ignore[no-untyped-def]
    ann_api, cy = world["api"]["ann"], world["cy"]
    status, created, _ = await ann_api.call("POST", "/api/blocks", {"userId": cy.user_id})
    assert status == 201 and created["block"]["blockedId"] == cy.user_id
    status, again, _ = await ann_api.call("POST", "/api/blocks", {"userId": cy.user_id})
    assert status == 200 and again["block"]["id"] == created["block"]["id"]
    assert (await ann_api.call("POST", "/api/blocks", {"userId": world["ann"].user_id}))[0] == 400
    assert (await ann_api.call("POST", "/api/blocks", {"userId": "ghost"}))[0] == 404
    _, listed, _ = await ann_api.call("GET", "/api/blocks")
    assert [b["blockedId"] for b in listed["blocks"]] == [cy.user_id]
    # Blocked: Ann and Cy never meet, whoever waits first.
    assert (await world["ann"].call("match:end", {"matchId": world["match"]}))["ok"]
    assert (await cy.call("queue:join", {"mode": "video"}))["ok"]
    await ann_api.call("POST", "/api/session/start", {})
    assert "matchId" not in await world["ann"].call("queue:join", {"mode": "video"})
    assert (await world["ann"].call("queue:leave"))["ok"]
    assert (await ann_api.call("DELETE", f"/api/blocks/{cy.user_id}"))[0] == 200
    assert (await ann_api.call("DELETE", f"/api/blocks/{cy.user_id}"))[0] == 404
    assert (await world["ann"].call("queue:join", {"mode": "video"}))["matchId"]


@pytest.mark.parametrize("clock", ["manual"], indirect=True)
async def test_a_flag_between_two_waiting_users_stops_the_fallback_pairing(server, world, clock) -> None:  # type: ignore[no-untyped-def]
    ann, bob = world["ann"], world["bob"]
    assert (await ann.call("match:end", {"matchId": world["match"]}))["ok"]
    for api in (world["api"]["ann"], world["api"]["bob"]):
        await api.call("POST", "/api/session/start", {})
    # No shared topic and no seniority: only the 30 s fallback could pair them.
    assert "matchId" not in await ann.call("queue:join", {"mode": "text", "topics": ["chess"]})
    assert "matchId" not in await bob.call("queue:join", {"mode": "text", "topics": ["golf"]})
    await world["api"]["bob"].call("POST", "/api/flags", {"flaggedUserId": ann.user_id, "matchId": world["match"]})
    await clock.advance(31)
    async with session_factory(server.db.engine)() as s:
        assert len((await s.execute(select(Match))).scalars().all()) == 1  # only the first match
    assert len(ann.received("match:found")) == 1
