"""`pairwire bot` end to end: real bots (aiohttp + python-socketio + aiortc) through a real server.

Everything stays on 127.0.0.1: the server fixture listens on loopback, the server hands out no
ICE servers by default, and every bot restricts its ICE host candidates to 127.0.0.1; an
autouse guard fails the test on any packet to another address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.store.models import ChatMessage, Match
from media.bot import Bot, BotOptions, BotReport, add_arguments, options_from_args, run_from_args

LOOPBACK = ["127.0.0.1"]
STEP = 30.0  # bound on each wait for something the server or the media should do


@pytest.fixture
def db_kind() -> str:
    """These tests exercise the wire, not the database: SQLite only."""
    return "sqlite"


def make_bot(server: Any, name: str, **options: Any) -> Bot:
    options.setdefault("ice_hosts", LOOPBACK)
    options.setdefault("timeout", 60.0)
    return Bot(BotOptions(url=server.url, display_name=name, **options))


@pytest.fixture
async def launch(server: Any) -> AsyncIterator[Callable[[Bot], asyncio.Task[BotReport]]]:
    """Start bots' runs as tasks; stop whatever is still running at the end (before the server)."""
    running: list[tuple[Bot, asyncio.Task[BotReport]]] = []

    def start(bot: Bot) -> asyncio.Task[BotReport]:
        task = asyncio.create_task(bot.run())
        running.append((bot, task))
        return task

    yield start
    for bot, task in running:
        if not task.done():
            bot.stop()
    tasks = [task for _, task in running]
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=20)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def stored_match(server: Any, match_id: str) -> Match:
    async with AsyncSession(server.db.engine) as session:
        match = await session.get(Match, match_id)
    assert match is not None, f"match {match_id} is not stored"
    return match


async def matched_pair(a: Bot, b: Bot) -> tuple[Any, Any]:
    """Both bots' records of their (first) common match, with the contract's invariants checked."""
    ca, cb = await asyncio.gather(a.wait_matched(1, STEP), b.wait_matched(1, STEP))
    assert ca.match_id == cb.match_id
    assert (ca.partner_id, cb.partner_id) == (b.user_id, a.user_id)
    assert (ca.partner_name, cb.partner_name) == (b.options.display_name, a.options.display_name)
    assert ca.initiator != cb.initiator, "exactly one side must be the initiator"
    return ca, cb


def assert_iso_utc(value: Any) -> None:
    assert isinstance(value, str) and value.endswith("Z"), value


# -- 1. a video call, ended by one side ------------------------------------------------------


async def test_two_video_bots_meet_exchange_video_and_one_ends(server: Any, launch: Any) -> None:
    a = make_bot(server, "Ada", topics=["Python", "webrtc"], call_seconds=0)
    b = make_bot(server, "Bob", topics=["webrtc", "go"], call_seconds=0)
    ta, tb = launch(a), launch(b)

    ca, cb = await matched_pair(a, b)
    assert "webrtc" in ca.matched_topics and "webrtc" in cb.matched_topics
    assert ca.mode == cb.mode == "video"

    await asyncio.gather(a.wait_frames(10, STEP), b.wait_frames(10, STEP))
    assert ca.started and cb.started
    ack = await a.end_call()
    assert ack is not None and ack["ok"] is True, (a.errors, [e[1] for e in a.events])

    ra, rb = await asyncio.wait_for(asyncio.gather(ta, tb), STEP)
    assert ra.ok and rb.ok, (ra.to_dict(), rb.to_dict())
    assert ra.errors == [] and rb.errors == []
    for record in (ca, cb):
        assert record.frames_received >= 10 and record.frames_sent >= 10
        assert record.setup_ms is not None and record.setup_ms > 0
        assert record.connections == 1 and record.found_count == 1
        assert record.ended is not None
    assert ca.ended["matchId"] == cb.ended["matchId"] == ca.match_id
    assert ca.ended["status"] == cb.ended["status"] == "ENDED"
    assert ca.ended["endedBy"] == cb.ended["endedBy"] == a.user_id
    assert_iso_utc(ca.ended["endedAt"])
    assert isinstance(ca.ended["duration"], int) and ca.ended["duration"] >= 0
    assert ca.action == "end" and cb.action is None

    match = await stored_match(server, ca.match_id)
    assert match.status == "ENDED"
    assert match.ended_by == a.user_id
    assert {match.user1_id, match.user2_id} == {a.user_id, b.user_id}
    assert match.user1_joined_at is not None and match.user2_joined_at is not None
    assert match.started_at is not None and match.ended_at is not None
    assert match.matched_at <= match.user1_joined_at <= match.started_at
    assert match.matched_at <= match.user2_joined_at <= match.started_at
    assert match.started_at <= match.ended_at
    assert isinstance(match.duration, int) and match.duration >= 0
    assert match.duration == ca.ended["duration"]

    report = json.loads(ra.to_json())  # the report is plain JSON
    assert report["framesReceived"] >= 10 and report["calls"][0]["status"] == "ENDED"

    # The server events' payloads are the contract's.
    for bot, record in ((a, ca), (b, cb)):
        payloads = {name: data for _, name, data in bot.events if name.startswith("match:")}
        found = payloads["match:found"]
        assert set(found) >= {"matchId", "roomId", "mode", "initiator", "partner", "matchedTopics", "iceServers"}
        assert found["mode"] == "video" and isinstance(found["roomId"], str)
        assert found["iceServers"] == []  # nothing configured: nothing handed out
        assert set(found["partner"]) >= {"id", "displayName"}
        started = payloads["match:started"]
        assert started["matchId"] == record.match_id
        assert_iso_utc(started["startedAt"])
        assert set(payloads["match:ended"]) >= {"matchId", "status", "endedBy", "endedAt", "duration"}


# -- 2. skip ---------------------------------------------------------------------------------


async def test_skip_ends_the_match_as_skipped_for_both(server: Any, launch: Any) -> None:
    a = make_bot(server, "Ada", topics=["rust"], skip_after=1.0)
    b = make_bot(server, "Bob", topics=["rust"], call_seconds=0)
    ta, tb = launch(a), launch(b)

    ca, cb = await matched_pair(a, b)
    ra, rb = await asyncio.wait_for(asyncio.gather(ta, tb), STEP)
    assert ra.failure is None and rb.failure is None, (ra.to_dict(), rb.to_dict())
    assert ra.errors == [] and rb.errors == []
    assert ca.action == "skip"
    for record in (ca, cb):
        assert record.ended is not None
        assert record.ended["matchId"] == ca.match_id
        assert record.ended["status"] == "SKIPPED"
        assert record.ended["endedBy"] == a.user_id
    # About a second went by: skip_after counts from match:found.
    assert a.events[-1][0] - ca.matched_at >= 0.9

    match = await stored_match(server, ca.match_id)
    assert match.status == "SKIPPED"
    assert match.ended_by == a.user_id
    assert match.ended_at is not None and match.matched_at <= match.ended_at


# -- 3. text mode and chat -------------------------------------------------------------------


async def test_text_bots_match_and_exchange_chat_messages(server: Any, launch: Any) -> None:
    a = make_bot(server, "Ada", mode="text", topics=["chess"], chat="hello from Ada", call_seconds=0)
    b = make_bot(server, "Bob", mode="text", topics=["chess"], chat="hi Ada, Bob here", call_seconds=0)
    ta, tb = launch(a), launch(b)

    ca, cb = await matched_pair(a, b)
    assert ca.mode == cb.mode == "text"
    await a.wait_for(lambda: bool(ca.partner_messages()), STEP)
    await b.wait_for(lambda: bool(cb.partner_messages()), STEP)
    await a.wait_for(lambda: bool(ca.chat_sent), STEP)
    await b.wait_for(lambda: bool(cb.chat_sent), STEP)

    (to_b,) = cb.partner_messages()
    (sent_by_a,) = ca.chat_sent
    assert to_b["matchId"] == ca.match_id
    assert to_b["from"] == a.user_id
    assert to_b["text"] == "hello from Ada"
    assert to_b["id"] == sent_by_a["id"]
    assert_iso_utc(to_b["sentAt"])
    assert to_b["sentAt"] == sent_by_a["sentAt"]
    (to_a,) = ca.partner_messages()
    assert (to_a["from"], to_a["text"]) == (b.user_id, "hi Ada, Bob here")

    async with AsyncSession(server.db.engine) as session:
        rows = (await session.execute(select(ChatMessage).where(ChatMessage.match_id == ca.match_id))).scalars().all()
    assert sorted((r.sender_id, r.text) for r in rows) == sorted(
        [(a.user_id, "hello from Ada"), (b.user_id, "hi Ada, Bob here")]
    )
    assert {r.id for r in rows} == {sent_by_a["id"], cb.chat_sent[0]["id"]}

    assert await b.end_call() is not None
    ra, rb = await asyncio.wait_for(asyncio.gather(ta, tb), STEP)
    assert ra.ok and rb.ok, (ra.to_dict(), rb.to_dict())
    assert ra.errors == [] and rb.errors == []
    assert ca.status == cb.status == "ENDED"
    assert ca.frames_received == cb.frames_received == 0  # text: no video at all
    match = await stored_match(server, ca.match_id)
    assert (match.status, match.mode.value, match.ended_by) == ("ENDED", "TEXT", b.user_id)


# -- 4. disconnect and resume within the grace period ---------------------------------------------


async def test_reconnect_within_grace_resumes_the_same_match(server: Any, launch: Any) -> None:
    a = make_bot(server, "Ada", topics=["go"], call_seconds=0, resume_after=1.0)
    b = make_bot(server, "Bob", topics=["go"], call_seconds=0)
    ta, tb = launch(a), launch(b)

    ca, cb = await matched_pair(a, b)
    await asyncio.gather(a.wait_frames(10, STEP), b.wait_frames(10, STEP))

    # Ada drops her socket one second after match:started and comes back with the same token:
    # both get match:found again for the same match and rebuild their peer connections.
    await a.wait_for(lambda: a.connects == 2, STEP)
    await asyncio.gather(
        a.wait_for(lambda: ca.found_count >= 2, STEP),
        b.wait_for(lambda: cb.found_count >= 2, STEP),
    )
    assert len(a.calls) == len(b.calls) == 1  # the same matchId, not a new match
    found = [(name, data) for _, name, data in a.events + b.events if name == "match:found"]
    assert {data["matchId"] for _, data in found} == {ca.match_id}
    assert sum(1 for _, data in found if data["initiator"]) == len(found) // 2

    # Media flows again on the rebuilt connections.
    await asyncio.gather(a.wait_frames(10, STEP), b.wait_frames(10, STEP))
    assert ca.connections == cb.connections == 2
    assert ca.resume_setup_ms and cb.resume_setup_ms
    assert ca.is_open and cb.is_open

    match = await stored_match(server, ca.match_id)
    assert match.status == "ACTIVE"
    assert match.ended_at is None and match.ended_by is None

    assert await b.end_call() is not None
    ra, rb = await asyncio.wait_for(asyncio.gather(ta, tb), STEP)
    assert ra.ok and rb.ok, (ra.to_dict(), rb.to_dict())
    assert ra.errors == [] and rb.errors == [], (ra.errors, rb.errors)
    assert ca.ended is not None and cb.ended is not None
    assert ca.ended["status"] == cb.ended["status"] == "ENDED"
    assert ca.ended["endedBy"] == b.user_id
    assert (await stored_match(server, ca.match_id)).status == "ENDED"


# -- both sides end at once ---------------------------------------------------------------------


async def test_both_ending_at_once_is_a_race_not_an_error(server: Any, launch: Any) -> None:
    """The loser's refusal arrives after its match:ended (the contract's delivery order), so it is excused."""
    a = make_bot(server, "Ada", topics=["race"], call_seconds=0)
    b = make_bot(server, "Bob", topics=["race"], call_seconds=0)
    ta, tb = launch(a), launch(b)
    ca, cb = await matched_pair(a, b)
    await asyncio.gather(a.wait_frames(1, STEP), b.wait_frames(1, STEP))

    acks = await asyncio.gather(a.end_call(), b.end_call())
    ra, rb = await asyncio.wait_for(asyncio.gather(ta, tb), STEP)
    assert sum(ack is not None for ack in acks) >= 1
    assert ra.ok and rb.ok
    assert ca.ended is not None and cb.ended is not None
    assert ca.ended == cb.ended and ca.ended["status"] == "ENDED"
    assert ca.ended["endedBy"] in (a.user_id, b.user_id)
    # Delivery order: "an acknowledgement comes after every event already decided for that
    # user", so the refused side has its match:ended before the refusal and records no error.
    assert ra.errors == [] and rb.errors == [], (ra.errors, rb.errors)


# -- the command line ------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pairwire bot")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_arguments_map_to_bot_options() -> None:
    defaults = options_from_args(_parse([]))
    assert defaults.url == "http://127.0.0.1:8080"
    assert (defaults.mode, defaults.calls, defaults.timeout, defaults.ice_hosts) == ("video", 1, 60.0, None)
    args = _parse([
        "--url", "http://127.0.0.1:9999/", "--name", "Load", "--mode", "text",
        "--topic", "python, rust", "--topic", "go", "--seniority", "senior", "--calls", "3",
        "--call-seconds", "0", "--skip-after", "2.5", "--ice-host", "127.0.0.1", "--ice-host", "::1",
        "--timeout", "30", "--chat", "hi", "--resume-after", "1", "--count", "4",
    ])
    assert args.count == 4
    options = options_from_args(args)
    assert options == BotOptions(
        url="http://127.0.0.1:9999", display_name="Load", mode="text", topics=["python", "rust", "go"],
        seniority="senior", calls=3, call_seconds=0.0, skip_after=2.5, ice_hosts=["127.0.0.1", "::1"],
        timeout=30.0, chat="hi", resume_after=1.0,
    )
    for bad in (["--ice-host", "localhost"], ["--calls", "0"], ["--timeout", "0"], ["--mode", "audio"],
                ["--call-seconds", "-1"]):
        with pytest.raises(SystemExit):
            _parse(bad)
    with pytest.raises(ValueError):
        BotOptions(mode="audio")


async def test_sign_in_failure_is_reported_not_raised(server: Any) -> None:
    bot = make_bot(server, " ", timeout=10)  # a blank display name is refused with `invalid`
    report = await bot.run()
    assert not report.ok and report.failure is not None and report.failure.startswith("invalid")
    assert bot.stopped.is_set()
    with pytest.raises(Exception):
        await bot.wait_matched(1, 1)


async def test_cli_runs_two_bots_that_call_each_other(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse([
        "--url", server.url, "--count", "2", "--name", "Load", "--topic", "load",
        "--ice-host", "127.0.0.1", "--call-seconds", "1", "--timeout", "45",
    ])
    # run_from_args owns its event loop (asyncio.run): give it a thread, keep serving here.
    code = await asyncio.to_thread(run_from_args, args)
    out, err = capsys.readouterr()
    # The in-process server logs to stdout too; the report is the indented JSON object.
    start = out.rindex("\n{\n") + 1 if not out.startswith("{\n") else 0
    summary, _end = json.JSONDecoder().raw_decode(out, start)
    assert code == 0, (summary, err)
    assert summary["ok"] is True and summary["totals"]["bots"] == 2
    bots = summary["bots"]
    assert [b["displayName"] for b in bots] == ["Load-1", "Load-2"]
    assert bots[0]["calls"][0]["matchId"] == bots[1]["calls"][0]["matchId"]
    assert bots[0]["calls"][0]["partnerId"] == bots[1]["userId"]
    assert all(b["framesReceived"] >= 1 and b["setupMs"] for b in bots)
    # Both bots end after 1 s, so one match:end may lose the race: that one may be refused,
    # nothing else. (That such a refusal is *excused* is tested on its own below.)
    errors = [e for b in bots for e in b["errors"]]
    assert all((e["event"], e["code"]) == ("match:end", "conflict") for e in errors), errors
    for needle in ("signed in", "connected", "queued", "matched with", "first frame after", "ended: ENDED"):
        assert needle in err, (needle, err)


# -- timeout and disconnect past the grace period, with a real bot on one side ----------------


@pytest.mark.parametrize("settings_overrides", [{"join_timeout_seconds": 1.5}])
async def test_timeout_when_the_partner_never_joins(server: Any, launch: Any) -> None:
    from tests.support.clients import sign_in

    bot = make_bot(server, "Ada", topics=["timeouts"], call_seconds=0)
    task = launch(bot)
    await bot.wait_for(lambda: bot.queue_positions, STEP)
    silent = await sign_in(server.url, "Silent", ["timeouts"])  # takes the match, never joins it
    try:
        assert (await silent.call("queue:join", {"mode": "video"}))["matchId"]
        ended = await silent.wait_for("match:ended", timeout=STEP)
        assert ended["status"] == "TIMEOUT" and ended["endedBy"] is None and ended["duration"] is None
        await bot.wait_ended(1, STEP)
        record = bot.calls[0]
        assert record.ended is not None and record.ended["status"] == "TIMEOUT"
        match = await stored_match(server, record.match_id)
        assert match.status.value == "TIMEOUT" and match.started_at is None and match.ended_at is not None
        assert (match.user1_joined_at is None) != (match.user2_joined_at is None)  # only the bot joined
    finally:
        await silent.close()
    await asyncio.wait_for(task, STEP)


@pytest.mark.parametrize("settings_overrides", [{"disconnect_grace_seconds": 1.0}])
async def test_a_partner_gone_past_the_grace_period_ends_the_call(server: Any, launch: Any) -> None:
    a = make_bot(server, "Ada", topics=["grace"], call_seconds=0)
    b = make_bot(server, "Bob", topics=["grace"], call_seconds=0)
    ta, tb = launch(a), launch(b)
    ca, _ = await matched_pair(a, b)
    await asyncio.gather(a.wait_frames(5, STEP), b.wait_frames(5, STEP))
    b.stop()  # Bob's socket closes and he never comes back
    await asyncio.wait_for(tb, STEP)
    await a.wait_ended(1, STEP)
    ended = a.calls[0].ended
    assert ended is not None and ended["status"] == "ENDED" and ended["endedBy"] == b.user_id
    assert isinstance(ended["duration"], int) and ended["duration"] >= 0
    match = await stored_match(server, ca.match_id)
    assert match.status.value == "ENDED" and match.ended_by == b.user_id and match.duration == ended["duration"]
    await asyncio.wait_for(ta, STEP)


async def test_the_seeds_verification_queries_after_a_bot_session(server: Any, launch: Any) -> None:
    """Three bots, two calls each in one session: every pair meets once, never twice (seed 4.4)."""
    import aiohttp

    from matching.identity import Role
    from pairwire.api.http import TOKENS

    bots = [make_bot(server, name, topics=["verify"], calls=2, call_seconds=1.0, timeout=90.0)
            for name in ("Ada", "Bob", "Cy")]
    reports = await asyncio.wait_for(asyncio.gather(*(launch(bot) for bot in bots)), 120)
    assert all(r.ok for r in reports), [r.to_dict() for r in reports]
    moderator = server.app[TOKENS].mint("verifier", Role.MODERATOR)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {moderator}"}) as http:
        for bot in bots:
            async with http.get(f"{server.url}/api/matches", params={"sessionId": bot.session_id}) as r:
                assert r.status == 200
                matches = (await r.json())["matches"]
            # "Find all matches in a specific session": both calls of this bot, in its session.
            assert len(matches) == 2
            # "Verify no duplicate matches in a session": no pair of people repeats.
            pairs = [frozenset((m["user1Id"], m["user2Id"])) for m in matches]
            assert len(set(pairs)) == len(pairs)
            assert all(bot.user_id in pair for pair in pairs)
            assert all(m["status"] == "ENDED" and m["duration"] is not None for m in matches)
        async with http.get(f"{server.url}/api/matches/stats") as r:
            stats = await r.json()
    assert stats["totalMatches"] == 3 and stats["matchesByMode"]["VIDEO"] == 3 and stats["endedMatches"] == 3
