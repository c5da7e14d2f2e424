"""The match page in real Chromium against the real server: matching, WebRTC video, chat, skip,
text mode, and a call with a `pairwire bot` (aiortc) in the same event loop.

Only loopback exists in here (see conftest.py); every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from media.bot import Bot, BotOptions
from pairwire.app import SIGNALING
from signaling.server import user_room
from tests.web.browser import PHONE, STEP_MS, OpenPage, matched_pair

STEP = STEP_MS / 1000


async def until(predicate: Callable[[], bool], timeout: float = STEP) -> None:
    """Poll a condition of an in-process object (Bot.wait_for is not woken by its queue:join ack)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_video_call_between_two_browsers(open_page: OpenPage) -> None:
    ada = await open_page("Ada")
    bo = await open_page("Bo")
    await ada.screenshot("signed-out")
    await ada.sign_in(topics="webrtc, rust", seniority="senior")
    await bo.sign_in(topics="WebRTC, python")
    await ada.screenshot("idle")

    await ada.start("video")
    await expect(ada.page.locator("#call-title")).to_have_text("Looking for someone…")
    await expect(ada.page.locator("#timer")).to_have_text("00:01", timeout=5_000)
    await ada.page.wait_for_function(
        "() => document.getElementById('local-video').videoWidth > 0", timeout=STEP_MS
    )
    await ada.screenshot("searching")

    await bo.start("video")
    for me, partner in ((ada, bo), (bo, ada)):
        await me.wait_state("in-call")
        await expect(me.page.locator("#call-title")).to_have_text(f"In a call with {partner.name}")
        await expect(me.page.locator("#topics-line")).to_have_text("Shared topics: webrtc")
    assert await ada.hook("initiator") is True  # waited longer
    assert await ada.hook("connections") == 1
    assert await bo.hook("initiator") is False
    assert await ada.hook("matchId") == await bo.hook("matchId")

    # The remote video plays on both sides: each page's own getStats() decodes inbound video.
    for page in (ada, bo):
        stats = await page.wait_frames(10)
        assert stats["connectionState"] == "connected", stats
        await page.wait_video_playing()
    await expect(ada.page.locator("#timer")).not_to_have_text("00:00")
    await ada.screenshot("in-call-video")

    # Mute and camera toggles are real buttons with the state in their label.
    await ada.click("Mute")
    await expect(ada.page.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
    assert await ada.page.evaluate(
        "() => document.getElementById('local-video').srcObject.getAudioTracks().every(t => !t.enabled)"
    )
    await ada.click("Camera off")
    await expect(ada.page.get_by_role("button", name="Camera on", exact=True)).to_be_visible()
    await ada.click("Camera on")
    await ada.click("Unmute")

    await bo.click("End")
    await bo.wait_state("ended")
    await ada.wait_state("ended")
    await expect(bo.page.locator("#call-title")).to_have_text("You ended the call")
    await expect(ada.page.locator("#call-title")).to_have_text("Bo left the call")
    detail = await ada.page.locator("#call-detail").inner_text()
    assert detail.startswith("Duration 00:"), detail
    ended = await ada.hook("ended")
    assert ended["status"] == "ENDED" and isinstance(ended["duration"], int), ended
    # The camera is released once the call is over.
    assert await ada.page.evaluate("() => document.getElementById('local-video').srcObject === null")
    await expect(ada.page.get_by_role("button", name="Start again")).to_be_visible()
    await ada.screenshot("ended")


async def test_chat_and_typing_indicator(open_page: OpenPage) -> None:
    ada, bo = await matched_pair(open_page, "video", viewport=PHONE)  # Bo on a phone

    # Typing shows on the other side, and goes away by itself ~2 s after the last keystroke.
    await ada.page.get_by_label("Message", exact=True).press_sequentially("Hel", delay=30)
    await expect(bo.page.locator("#typing")).to_have_text("Ada is typing…")
    await expect(bo.page.locator("#typing")).to_have_text("", timeout=6_000)

    # Sending clears the indicator at once and delivers the message.
    await ada.page.get_by_label("Message", exact=True).fill("")
    await ada.page.get_by_label("Message", exact=True).press_sequentially("Hello Bo", delay=10)
    await expect(bo.page.locator("#typing")).to_have_text("Ada is typing…")
    await ada.page.get_by_role("button", name="Send", exact=True).click()
    await expect(bo.page.locator("#messages .msg.theirs .text")).to_have_text(["Hello Bo"])
    await expect(bo.page.locator("#typing")).to_have_text("")
    await expect(ada.page.locator("#messages .msg.mine .text")).to_have_text(["Hello Bo"])
    await expect(ada.page.locator("#messages .msg.mine")).not_to_have_class("pending")

    # User text is text: markup arrives verbatim and is never parsed.
    payload = '<img src=x onerror="window.__owned=1"><b>bold</b>'
    await bo.chat(payload)
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text([payload])
    assert await ada.page.locator("#messages img, #messages b").count() == 0
    assert await ada.page.evaluate("() => window.__owned === undefined")

    # Enter sends too (keyboard only).
    await bo.page.get_by_label("Message", exact=True).fill("sent with Enter")
    await bo.page.get_by_label("Message", exact=True).press("Enter")
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text([payload, "sent with Enter"])
    await ada.screenshot("chat-beside-video")
    await bo.screenshot("chat-beside-video")


async def test_skip_searches_again_and_partner_sees_ended(open_page: OpenPage) -> None:
    ada, bo = await matched_pair(open_page, "video")

    await ada.click("Skip")
    await ada.wait_state("searching")
    await expect(ada.page.locator("#call-title")).to_have_text("Looking for someone…")
    assert await ada.hook("matchId") is None
    await bo.wait_state("ended")
    await expect(bo.page.locator("#call-title")).to_have_text("Ada skipped to someone new")
    ended = await bo.hook("ended")
    assert ended["status"] == "SKIPPED" and ended["endedBy"] == await ada.hook("userId"), ended
    await bo.screenshot("ended-by-skip")

    # Bo starts again; Ada is still waiting but already met in this session: no rematch, and
    # Bo is told why.
    await bo.click("Start again")
    await bo.wait_state("searching")
    await expect(bo.page.locator("#call-detail")).to_contain_text("No new matches available")
    await bo.screenshot("searching-exhausted")
    assert await ada.hook("state") == "searching"
    assert await ada.hook("matchId") is None

    # Bo starts a new session (REST) and waits again in it; Ada's session still has Bo as met,
    # so they are still not paired and Bo hears so again.
    old_session = await bo.hook("sessionId")
    await bo.click("Start a new session")
    await bo.page.wait_for_function(
        "old => window.pairwire.sessionId && window.pairwire.sessionId !== old", arg=old_session, timeout=STEP_MS
    )
    await expect(bo.page.locator("#call-detail")).to_contain_text("No new matches available")
    assert await bo.hook("state") == "searching" and await ada.hook("state") == "searching"

    # Cancel goes back to the lobby (and to the choice of mode).
    await bo.click("Cancel")
    await bo.wait_state("idle")
    await expect(bo.page.get_by_role("heading", name="Start a conversation")).to_be_visible()


@pytest.mark.parametrize("first", ["page", "bot"])
async def test_video_call_with_a_bot(open_page: OpenPage, server: Any, first: str) -> None:
    page = await open_page("Ada")
    await page.sign_in(topics="aiortc")
    bot = Bot(
        BotOptions(
            url=server.url,
            display_name="Botty",
            topics=["aiortc"],
            ice_hosts=["127.0.0.1"],
            call_seconds=0,  # stay until the page ends the call
            timeout=60,
        )
    )
    run: asyncio.Task[Any] | None = None
    try:
        if first == "page":
            await page.start("video")
            await page.page.wait_for_function("() => window.pairwire.sessionId !== null", timeout=STEP_MS)
            run = asyncio.ensure_future(bot.run())
        else:
            run = asyncio.ensure_future(bot.run())
            await until(lambda: bool(bot.queue_positions))
            await page.start("video")

        record = await bot.wait_matched(timeout=STEP)
        await page.wait_state("in-call")
        assert record.initiator is (first == "bot")
        assert await page.hook("initiator") is (first == "page")
        await expect(page.page.locator("#call-title")).to_have_text("In a call with Botty")

        await bot.wait_frames(10, timeout=STEP)
        stats = await page.wait_frames(10)
        await page.wait_video_playing()
        assert record.frames_received > 0 and stats["framesDecoded"] > 0
        await page.screenshot("in-call-with-bot")

        await page.click("End")
        await page.wait_state("ended")
        report = await asyncio.wait_for(run, STEP)
        assert report.ok, report.to_dict()
        assert report.calls[0]["status"] == "ENDED" and report.calls[0]["framesReceived"] > 0
        assert not report.errors, report.errors
    finally:
        if run is not None and not run.done():
            bot.stop()
            await asyncio.wait_for(run, STEP)


async def test_resume_rebuilds_the_connection(open_page: OpenPage, server: Any) -> None:
    """The bot drops its socket mid-call and comes back: both get match:found again, the page
    closes its RTCPeerConnection, builds a new one, and video flows again."""
    page = await open_page("Ada")
    await page.sign_in(topics="resume")
    bot = Bot(
        BotOptions(
            url=server.url,
            display_name="Botty",
            topics=["resume"],
            ice_hosts=["127.0.0.1"],
            call_seconds=0,
            resume_after=1.0,
            timeout=60,
        )
    )
    run = asyncio.ensure_future(bot.run())
    try:
        await until(lambda: bool(bot.queue_positions))
        await page.start("video")
        record = await bot.wait_matched(timeout=STEP)
        await page.wait_frames(5)
        first_pc = await page.page.evaluate("() => window.pairwire.stats().then(s => s && s.framesDecoded)")
        assert first_pc >= 5
        await bot.wait_for(lambda: record.found_count >= 2 and record.frames_received_current >= 5, STEP)
        # The page is still in the same call, on a new connection that decodes video again.
        assert await page.hook("matchId") == record.match_id
        assert await page.hook("state") == "in-call"
        await page.page.wait_for_function("() => window.pairwire.connections === 2", timeout=STEP_MS)
        await page.wait_frames(5)
        assert bot.connects == 2
        await page.click("End")
        await page.wait_state("ended")
        report = await asyncio.wait_for(run, STEP)
        assert report.ok, report.to_dict()
        assert report.calls[0]["connections"] == 2 and report.calls[0]["resumeSetupMs"], report.calls[0]
    finally:
        if not run.done():
            bot.stop()
            await asyncio.wait_for(run, STEP)


async def test_text_mode_chat(open_page: OpenPage) -> None:
    ada, bo = await matched_pair(open_page, "text", viewport=PHONE)
    for page in (ada, bo):
        await expect(page.page.locator("#media")).to_be_hidden()
        await expect(page.page.get_by_role("button", name="Mute")).to_be_hidden()
        await expect(page.page.get_by_label("Message", exact=True)).to_be_enabled()
        assert await page.hook("mode") == "text"
        assert await page.stats() is None  # no peer connection in text mode
    await ada.chat("Hi from a desktop")
    await expect(bo.page.locator("#messages .msg.theirs .text")).to_have_text(["Hi from a desktop"])
    await bo.chat("Hi from a phone, with a longer line to see how the bubble wraps on a narrow screen")
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text(
        ["Hi from a phone, with a longer line to see how the bubble wraps on a narrow screen"]
    )
    await ada.screenshot("text-chat")
    await bo.screenshot("text-chat")

    await bo.click("End")
    await ada.wait_state("ended")
    await expect(ada.page.locator("#call-title")).to_have_text("Bo left the call")
    # The conversation stays readable after the call; the composer is gone.
    await expect(ada.page.locator("#messages .msg")).to_have_count(2)
    await expect(ada.page.get_by_label("Message", exact=True)).to_be_hidden()
    await ada.screenshot("ended-text")
    await bo.screenshot("ended-text")


async def test_denied_camera_is_explained(open_page: OpenPage) -> None:
    deny = (
        "navigator.mediaDevices.getUserMedia = () => "
        "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"
    )
    ada = await open_page("Ada", init_script=deny)
    await ada.sign_in()
    await ada.page.get_by_role("button", name="Start", exact=True).click()
    await expect(ada.page.locator("#lobby-message")).to_contain_text("Camera and microphone access was denied")
    assert await ada.hook("state") == "idle"
    await ada.screenshot("camera-denied")
    # Text chat still works without a camera.
    await ada.start("text")


async def test_keyboard_only_sign_in_and_start(open_page: OpenPage) -> None:
    ada = await open_page("Ada", viewport=PHONE)
    page = ada.page
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.id") == "display-name"
    await page.keyboard.type("Ada")
    await page.keyboard.press("Tab")
    await page.keyboard.type("keyboards")
    await page.keyboard.press("Enter")  # submits the form
    await ada.wait_state("idle")
    await ada.screenshot("idle")
    # Focus lands on the new view's heading; Tab reaches the mode choice, then Start.
    assert await page.evaluate("() => document.activeElement.id") == "lobby-title"
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.value") == "video"
    await page.keyboard.press("ArrowDown")  # radio group: choose text
    assert await page.evaluate("() => document.activeElement.value") == "text"
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.id") == "start"
    await page.keyboard.press("Enter")
    await ada.wait_state("searching")
    await ada.screenshot("searching")
    # Escape hatch by keyboard: the focus is on the status heading, Cancel is reachable.
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.id") == "cancel"
    await page.keyboard.press("Enter")
    await ada.wait_state("idle")


async def test_lost_connection_resumes_the_call(open_page: OpenPage, server: Any) -> None:
    """The server drops Ada's socket mid-call: she sees it, reconnects, gets match:found again for
    the same match, rebuilds her peer connection, and the call goes on (video and chat)."""
    ada, bo = await matched_pair(open_page, "video")
    match_id = await ada.hook("matchId")
    await ada.wait_frames(5)
    sio = server.app[SIGNALING].sio
    sids = [sid for sid, _ in sio.manager.get_participants("/", user_room(await ada.hook("userId")))]
    assert sids
    for sid in sids:
        await sio.disconnect(sid)
    await expect(ada.page.locator("#banner")).to_contain_text("Connection lost")
    await ada.screenshot("connection-lost")
    await expect(ada.page.locator("#banner")).to_be_hidden()
    await ada.page.wait_for_function("() => window.pairwire.connected", timeout=STEP_MS)
    assert await ada.hook("matchId") == match_id
    assert await ada.hook("state") == "in-call"
    # Both sides rebuilt their connection; video flows again on the new one.
    for page in (ada, bo):
        await page.page.wait_for_function("() => window.pairwire.connections === 2", timeout=STEP_MS)
        await page.wait_frames(5)
    await ada.chat("back again")
    await expect(bo.page.locator("#messages .msg.theirs .text")).to_have_text(["back again"])


async def test_reload_resumes_the_call(open_page: OpenPage) -> None:
    """A reload keeps the guest token (sessionStorage); the server offers the open match again
    and the new page builds a new connection to the partner."""
    ada, bo = await matched_pair(open_page, "video")
    match_id = await ada.hook("matchId")
    await ada.wait_frames(5)
    await ada.page.reload()
    await ada.page.wait_for_function(
        "id => window.pairwire && window.pairwire.matchId === id", arg=match_id, timeout=STEP_MS
    )
    await expect(ada.page.locator("#whoami")).to_have_text("Signed in as Ada")
    await ada.wait_frames(5)
    # match:found does not say whether the call had started, and match:started is not sent
    # again, so the reloaded page cannot know: it shows "matched" (see docs/user-guide.md).
    assert await ada.hook("state") in ("matched", "in-call")
    await bo.page.wait_for_function("() => window.pairwire.connections === 2", timeout=STEP_MS)
    await bo.wait_frames(5)
    assert await bo.hook("state") == "in-call"
    await ada.click("End")
    await bo.wait_state("ended")
    await expect(bo.page.locator("#call-title")).to_have_text("Ada left the call")
