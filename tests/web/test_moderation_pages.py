"""Reporting a partner, the moderators' queue and the activity dashboard, in real Chromium
against the real server (SQLite, loopback only; see conftest.py).

The flag is saved by the first press of Report, before the form opens: the test looks it up
through the API (as a moderator) as soon as the form is visible, without intercepting anything.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from playwright.async_api import expect

from matching.identity import Role
from matching.store import users
from matching.store.models import ActivityStatus, CallMode, Match, MatchStatus, UserActivity, new_id
from pairwire.api.http import TOKENS
from pairwire.api.store import SESSIONS
from tests.web.browser import PHONE, STEP_MS, MatchPage, OpenPage, matched_pair, rest

THANKS = "Report submitted. Thank you for keeping our community safe."
MARKUP = '<img src=x onerror="window.__owned=1"><b>bold</b>'


def staff_token(server: Any, role: Role = Role.ADMIN, user_id: str = "mod-1", name: str = "Morgan") -> str:
    """A moderator/admin token, as `pairwire token --user ID --role ...` makes them."""
    return server.app[TOKENS].mint(user_id, role, name=name)


async def flags_of(server: Any, token: str, match_id: str) -> list[dict[str, Any]]:
    status, body = await rest(server.url, "GET", f"/api/flags?matchId={match_id}", token)
    assert status == 200, body
    return body["flags"]


async def report(page: MatchPage) -> None:
    """Press Report and wait for the form (the flag is saved before it opens)."""
    await page.click("Report")
    await expect(page.page.get_by_role("dialog")).to_be_visible()


async def test_report_saves_the_flag_before_the_form_and_ends_the_call(open_page: OpenPage, server: Any) -> None:
    ada, bo = await matched_pair(open_page, "video")
    admin = staff_token(server)
    match_id = await ada.hook("matchId")
    bo_id = await bo.hook("userId")
    await ada.chat("Hi Bo, nice to meet you")
    await expect(bo.page.locator("#messages .msg.theirs .text")).to_have_text(["Hi Bo, nice to meet you"])
    await bo.chat("whatever, give me your card number")
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text(["whatever, give me your card number"])
    await ada.wait_frames(5)
    await ada.wait_video_playing()
    await expect(ada.page.get_by_role("button", name="Report", exact=True)).to_be_visible()
    await expect(ada.page.locator("#timer")).not_to_have_text("00:00")
    await ada.screenshot("in-call")
    assert await flags_of(server, admin, match_id) == []

    # One press: the flag exists, with an empty reason, by the time the form is visible.
    await ada.click("Report")
    dialog = ada.page.get_by_role("dialog", name="Report Bo")
    await expect(dialog).to_be_visible()
    flags = await flags_of(server, admin, match_id)
    assert len(flags) == 1, flags
    flag = flags[0]
    assert flag["reason"] == "" and flag["status"] == "PENDING", flag
    assert flag["flaggedUserId"] == bo_id and flag["flaggedById"] == await ada.hook("userId"), flag
    assert flag["flaggedBy"]["name"] == "Ada" and flag["flaggedUser"]["name"] == "Bo", flag
    assert (await ada.hook("report"))["flag"]["id"] == flag["id"]

    # The form: focus in the reason, the flag is said to be saved already, end-call on by default.
    await expect(dialog.get_by_label("What happened?")).to_be_focused()
    await expect(dialog).to_contain_text("already saved")
    await expect(dialog).to_contain_text("If you close this without a reason, the report stays saved")
    await expect(dialog.get_by_label("End the call")).to_be_checked()
    await expect(dialog.locator("#flag-count")).to_have_text("0 of at least 10 characters")
    # The page behind is inert while the form is open (a modal dialog).
    assert await ada.page.evaluate("() => document.querySelector('#flag-dialog').matches(':modal')")

    # Too short: a validation message, nothing sent.
    await dialog.get_by_label("What happened?").fill("rude")
    await expect(dialog.locator("#flag-count")).to_have_text("4 of at least 10 characters")
    await dialog.get_by_role("button", name="Submit report").click()
    await expect(dialog.locator("#flag-error")).to_contain_text("at least 10 characters")
    assert (await flags_of(server, admin, match_id))[0]["reason"] == ""
    await ada.screenshot("flag-modal")

    # Escape closes the form; the flag stays (without a reason), focus goes back to Report.
    await ada.page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(ada.page.get_by_role("button", name="Report", exact=True)).to_be_focused()  # (after "close")
    await expect(ada.page.locator("#report-status")).to_contain_text("saved, without a reason")
    assert await ada.hook("state") == "in-call"

    # Report again: the same flag's form (no second flag), the text typed so far is still there.
    await report(ada)
    assert len(await flags_of(server, admin, match_id)) == 1
    await expect(dialog.get_by_label("What happened?")).to_have_value("rude")
    reason = f"Asked for my card number and sent {MARKUP}"
    await dialog.get_by_label("What happened?").fill(reason)
    await expect(dialog.locator("#flag-count")).to_have_text(f"{len(reason)} characters")
    await dialog.get_by_label("Category").select_option("SCAM")
    await dialog.get_by_role("button", name="Submit report").click()

    # Thanks, the reason stored by the PATCH, and the call ended for both.
    await expect(dialog).to_contain_text(THANKS)
    await expect(ada.page.locator("#report-status")).to_have_text(THANKS)
    stored = (await flags_of(server, admin, match_id))[0]
    assert stored["id"] == flag["id"] and stored["reason"] == reason and stored["category"] == "SCAM", stored
    assert stored["flaggedAt"] == flag["flaggedAt"], "the flag keeps the time of the first press"
    await ada.wait_state("ended")
    await bo.wait_state("ended")
    await expect(bo.page.locator("#call-title")).to_have_text("Ada left the call")
    ended = await bo.hook("ended")
    assert ended["status"] == "ENDED" and ended["endedBy"] == await ada.hook("userId"), ended
    # The report is not announced to the person reported.
    await expect(bo.page.locator("#report-status")).to_be_hidden()
    await ada.screenshot("thank-you")

    await dialog.get_by_role("button", name="Done").click()
    await expect(dialog).to_be_hidden()
    await expect(ada.page.get_by_role("button", name="Reported", exact=True)).to_be_disabled()
    await expect(ada.page.locator("#report-status")).to_have_text(THANKS)
    # The audit trail has both steps: raised (empty reason), then the reason.
    status, body = await rest(server.url, "GET", f"/api/flags/{flag['id']}", admin)
    assert status == 200 and [e["action"] for e in body["audit"]] == ["create", "reason"], body


async def test_report_keeps_the_call_when_asked_and_works_by_keyboard(open_page: OpenPage, server: Any) -> None:
    ada, bo = await matched_pair(open_page, "text", viewport=PHONE)
    admin = staff_token(server)
    match_id = await ada.hook("matchId")
    page = bo.page  # Bo, on a phone, reports Ada with the keyboard alone
    await page.get_by_role("button", name="Report", exact=True).focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Report Ada")
    await expect(dialog).to_be_visible()
    assert len(await flags_of(server, admin, match_id)) == 1
    await page.keyboard.type("Spamming links to a crypto site")
    await page.keyboard.press("Tab")  # category
    await page.keyboard.press("Tab")  # End the call
    assert await page.evaluate("() => document.activeElement.id") == "flag-end"
    await page.keyboard.press("Space")
    await expect(dialog.get_by_label("End the call")).not_to_be_checked()
    await bo.screenshot("flag-modal-phone")
    # Focus stays in the dialog: Tab from the last button comes back inside it.
    for _ in range(4):
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.getElementById('flag-dialog').contains(document.activeElement)")
    await dialog.get_by_role("button", name="Submit report").click()
    await expect(dialog).to_contain_text(THANKS)
    await bo.screenshot("thank-you-phone")
    await page.keyboard.press("Enter")  # Done has the focus
    await expect(dialog).to_be_hidden()
    # The call goes on.
    assert await bo.hook("state") == "in-call" and await ada.hook("state") == "in-call"
    await bo.chat("still here")
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text(["still here"])
    stored = (await flags_of(server, admin, match_id))[0]
    assert stored["reason"] == "Spamming links to a crypto site" and stored["category"] is None, stored


async def test_moderator_queue_shows_the_flag_and_resolves_it(open_page: OpenPage, server: Any) -> None:
    ada, bo = await matched_pair(open_page, "text")
    match_id = await ada.hook("matchId")
    await ada.chat("hello there")
    await expect(bo.page.locator("#messages .msg.theirs .text")).to_have_text(["hello there"])
    await bo.chat(MARKUP)
    await expect(ada.page.locator("#messages .msg.theirs .text")).to_have_text([MARKUP])
    await report(ada)
    dialog = ada.page.get_by_role("dialog")
    reason = f"Sent this markup: {MARKUP}"
    await dialog.get_by_label("What happened?").fill(reason)
    await dialog.get_by_label("Category").select_option("HARASSMENT")
    await dialog.get_by_role("button", name="Submit report").click()
    await expect(dialog).to_contain_text(THANKS)
    await bo.wait_state("ended")

    admin = staff_token(server)
    mod = await open_page("Morgan", path=f"/static/moderate.html#token={admin}")
    page = mod.page
    await expect(page.get_by_role("heading", name="Moderation queue")).to_be_visible()
    assert "token" not in page.url, "the token is taken out of the address"
    await expect(page.locator("#whoami")).to_have_text("Signed in as Morgan (admin)")
    tabs = page.get_by_role("group", name="Show flags by status")
    await expect(tabs.get_by_role("button", name="Pending (1)")).to_have_attribute("aria-pressed", "true")
    items = page.locator("#flag-list .flag-open")
    await expect(items).to_have_count(1)
    await expect(items.first).to_contain_text("Bo")
    await expect(items.first).to_contain_text("reported by Ada")
    await expect(items.first).to_contain_text("Harassment")

    await items.first.click()
    detail = page.locator("#detail")
    await expect(page.locator("#detail-title")).to_have_text("Flag against Bo")
    await expect(page.locator("#detail-title")).to_be_focused()
    await expect(page.locator("#detail-reason")).to_have_text(reason)
    await expect(page.locator("#transcript .text")).to_have_text(["hello there", MARKUP])
    await expect(page.locator("#transcript .who")).to_have_text(["Ada", "Bo"])
    timeline = page.locator("#timeline")
    for step in ("Matched", "Ada joined", "Bo joined", "Call started", "Flagged by Ada", "Call ended by Ada"):
        await expect(timeline).to_contain_text(step)
    await expect(page.locator("#match-summary")).to_contain_text("Text chat between")
    await expect(page.locator("#match-summary")).to_contain_text("status ENDED")
    await expect(page.locator("#audit")).to_contain_text("Flag raised by Ada")
    await expect(page.locator("#audit")).to_contain_text("Reason given by Ada")
    # User text is text everywhere on the page.
    assert await detail.locator("img, b").count() == 0
    assert await page.locator("#flag-list img, #flag-list b").count() == 0
    assert await page.evaluate("() => window.__owned === undefined")
    await mod.screenshot("queue-detail")

    await page.get_by_label("Notes for the team").fill("Warned Bo; <i>see</i> the transcript.")
    await page.get_by_role("button", name="Resolve", exact=True).click()
    await expect(page.locator("#review-message")).to_have_text("Saved: marked resolved.")
    flag_id = await page.evaluate("() => window.pairwireQueue.selected")
    status, body = await rest(server.url, "GET", f"/api/flags/{flag_id}", admin)
    assert status == 200, body
    assert body["flag"]["status"] == "RESOLVED" and body["flag"]["reviewedBy"] == "mod-1", body
    assert body["flag"]["adminNotes"] == "Warned Bo; <i>see</i> the transcript.", body
    assert [e["action"] for e in body["audit"]] == ["create", "reason", "review"], body
    await expect(page.locator("#audit")).to_contain_text("Reviewed by Morgan")
    await expect(page.locator("#audit")).to_contain_text("status: Pending → Resolved")
    await expect(page.locator("#audit")).to_contain_text("notes: (empty) → “Warned Bo; <i>see</i> the transcript.”")
    await expect(page.locator("#detail-status")).to_have_text("Resolved")
    await expect(page.locator("#detail-facts")).to_contain_text("by Morgan")
    assert await detail.locator("i").count() == 0
    # Out of the pending list, into the resolved one.
    await expect(items).to_have_count(0)
    await expect(page.locator("#list-empty")).to_have_text("No pending flags.")
    await expect(tabs.get_by_role("button", name="Resolved (1)")).to_be_visible()
    await tabs.get_by_role("button", name="Resolved (1)").click()
    await expect(items).to_have_count(1)
    await mod.screenshot("queue-resolved")

    # Another moderator, on a phone, sees who reviewed it (a name looked up, not in the list).
    riley = staff_token(server, Role.MODERATOR, user_id="mod-2", name="Riley")
    phone = await open_page("Riley-phone", viewport=PHONE, path=f"/static/moderate.html#token={riley}")
    await expect(phone.page.get_by_role("heading", name="Moderation queue")).to_be_visible()
    await phone.page.get_by_role("button", name="All (1)").click()
    await phone.page.locator("#flag-list .flag-open").first.click()
    await expect(phone.page.locator("#transcript .text")).to_have_text(["hello there", MARKUP])
    await expect(phone.page.locator("#detail-facts")).to_contain_text("by Morgan")
    await expect(phone.page.locator("#audit")).to_contain_text("Reviewed by Morgan")
    assert await phone.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await phone.screenshot("queue", scale="css")
    status, body = await rest(server.url, "GET", f"/api/flags?matchId={match_id}", riley)
    assert status == 200 and body["total"] == 1, body


async def test_plain_users_see_moderators_only(open_page: OpenPage, server: Any) -> None:
    status, body = await rest(server.url, "POST", "/api/auth/guest", body={"displayName": "Ada"})
    assert status == 201, body
    user_token = body["token"]
    status, body = await rest(server.url, "GET", "/api/flags", user_token)
    assert status == 403 and body["error"]["code"] == "forbidden", body

    ada = await open_page("Ada", path=f"/static/moderate.html#token={user_token}")
    await expect(ada.page.get_by_role("heading", name="Moderators only")).to_be_visible()
    await expect(ada.page.locator("#denied-view")).to_contain_text("for moderators and admins only")
    await expect(ada.page.locator("#content")).to_be_hidden()
    await ada.screenshot("queue-denied")
    await ada.page.goto("/static/dashboard.html")  # same tab: same token
    await expect(ada.page.get_by_role("heading", name="Moderators only")).to_be_visible()
    # The match page does not offer the moderator pages to a plain user.
    await ada.page.goto("/")
    await ada.wait_state("idle")
    await expect(ada.page.locator("#staff-nav")).to_be_hidden()

    # Without a token: the paste box; a moderator token pasted there opens the queue.
    mod = await open_page("Morgan", path="/static/moderate.html")
    await expect(mod.page.get_by_role("heading", name="Moderator sign-in")).to_be_visible()
    await mod.page.get_by_label("Token").fill(staff_token(server, Role.MODERATOR))
    await mod.page.get_by_role("button", name="Use this token").click()
    await expect(mod.page.get_by_role("heading", name="Moderation queue")).to_be_visible()
    await expect(mod.page.locator("#list-empty")).to_have_text("No pending flags.")
    # Moderators find their pages from the match page too.
    await mod.page.goto("/")
    await mod.wait_state("idle")
    nav = mod.page.get_by_role("navigation", name="Moderator pages")
    await nav.get_by_role("link", name="Dashboard").click()
    await expect(mod.page.get_by_role("heading", name="Activity dashboard")).to_be_visible()
    await mod.page.get_by_role("link", name="Moderation queue").click()
    await expect(mod.page.get_by_role("heading", name="Moderation queue")).to_be_visible()
    await mod.page.get_by_role("button", name="Forget token").click()
    await expect(mod.page.get_by_role("heading", name="Moderator sign-in")).to_be_visible()


CHARTS = ("activity-chart", "matches-chart", "mode-chart")
# People busy in each of the past 24 hours (oldest first): a quiet night, a busy afternoon.
BUSY_BY_HOUR = [2, 2, 0, 0, 0, 2, 2, 4, 4, 6, 6, 8, 6, 6, 8, 8, 6, 4, 4, 6, 4, 2, 2, 2]


async def seed_past_day(server: Any) -> int:
    """A day of past activity and finished matches (all over an hour ago), written to the store
    as the server would have; answers how many matches it added."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    added = 0
    async with server.app[SESSIONS].begin() as s:
        people = [
            (await users.create_user(s, display_name=f"Seed {i}", is_guest=True, now=now - timedelta(days=2))).id
            for i in range(max(BUSY_BY_HOUR))
        ]
        for back, busy in enumerate(reversed(BUSY_BY_HOUR), start=1):
            hour = now - timedelta(hours=back)
            for i in range(busy):
                user = people[i]
                mode = CallMode.VIDEO if (i // 2 + back) % 3 else CallMode.TEXT
                call_from, call_to = 11 + i % 3, 35 + (i * 7 + back) % 20
                steps = [
                    (ActivityStatus.ONLINE, None, 0, 8),
                    (ActivityStatus.SEARCHING, mode, 8, call_from),
                    (ActivityStatus.IN_CALL, mode, call_from, call_to),
                    (ActivityStatus.ONLINE, None, call_to, 60),
                ]
                for status, row_mode, start, end in steps:
                    s.add(UserActivity(id=new_id(), user_id=user, status=status, mode=row_mode,
                                       joined_at=hour + timedelta(minutes=start), last_seen=hour + timedelta(minutes=end)))
                if i % 2:
                    matched = hour + timedelta(minutes=call_from)
                    ended = hour + timedelta(minutes=call_to)
                    s.add(Match(
                        id=new_id(), user1_id=people[i - 1], user2_id=user, mode=mode, status=MatchStatus.ENDED,
                        matched_at=matched, started_at=matched + timedelta(seconds=4), ended_at=ended,
                        duration=int((ended - matched).total_seconds()) - 4, ended_by=user,
                        user1_joined_at=matched + timedelta(seconds=2), user2_joined_at=matched + timedelta(seconds=4),
                        matched_topics=[], created_at=matched, updated_at=ended,
                    ))
                    added += 1
    return added


async def test_dashboard_live_counts_and_charts(open_page: OpenPage, server: Any) -> None:
    seeded = await seed_past_day(server)
    # And one finished text match now.
    ada, bo = await matched_pair(open_page, "text")
    await ada.chat("short call")
    await bo.click("End")
    await ada.wait_state("ended")

    admin = staff_token(server)
    dash = await open_page("Morgan", path=f"/static/dashboard.html#token={admin}")
    page = dash.page
    await expect(page.get_by_role("heading", name="Activity dashboard")).to_be_visible()
    # Ada and Bo are online (connected), nobody searches.
    await expect(page.locator("#now-online")).to_have_text("2")
    await expect(page.locator("#now-searching")).to_have_text("0")
    await expect(page.locator("#now-in-call")).to_have_text("0")
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^Updated \d"))

    # Live: Ada starts searching again, the dashboard sees it at its next poll.
    await ada.click("Start again")
    await ada.wait_state("searching")
    await expect(page.locator("#now-searching")).to_have_text("1", timeout=STEP_MS)
    await expect(page.locator("#now-breakdown")).to_contain_text("0 video, 1 text")

    # The charts are drawn (Chart.js instances on the canvases) and the numbers are the API's.
    await page.wait_for_function(
        "ids => window.pairwireDashboard.statsQuery && ids.every(id => window.Chart.getChart(document.getElementById(id)))",
        arg=list(CHARTS),
        timeout=STEP_MS,
    )
    await check_numbers(page, server, admin, bucket=3600)
    await expect(page.locator("#stat-total")).to_have_text(str(seeded + 1))
    await expect(page.locator("#per-bucket-title")).to_have_text("Matches per hour")
    await expect(page.locator("#activity-summary")).to_contain_text(f"at most {max(BUSY_BY_HOUR)} online")
    await dash.screenshot("dashboard")

    # Another range: new buckets, the same charts updated in place.
    await page.get_by_role("button", name="Last hour").click()
    await page.wait_for_function("() => window.pairwireDashboard.statsQuery.includes('bucket=300')", timeout=STEP_MS)
    await expect(page.locator("#per-bucket-title")).to_have_text("Matches per 5 minutes")
    await check_numbers(page, server, admin, bucket=300)
    await page.get_by_role("button", name="Last 7 days").click()
    await page.wait_for_function("() => window.pairwireDashboard.range === 'week' && window.pairwireDashboard.statsQuery.includes('bucket=3600') && window.pairwireDashboard.historyQuery.includes('bucket=3600')", timeout=STEP_MS)
    await check_numbers(page, server, admin, bucket=3600)

    # A phone.
    phone = await open_page("Morgan-phone", viewport=PHONE, path=f"/static/dashboard.html#token={admin}")
    await expect(phone.page.locator("#now-searching")).to_have_text("1")
    await phone.page.wait_for_function(
        "ids => ids.every(id => window.Chart.getChart(document.getElementById(id)))", arg=list(CHARTS), timeout=STEP_MS
    )
    # Nothing wider than the screen.
    assert await phone.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await phone.screenshot("dashboard", scale="css")
    await phone.screenshot("dashboard-top", scale="css", full_page=False)

    await ada.click("Cancel")
    await ada.wait_state("idle")
    await expect(page.locator("#now-searching")).to_have_text("0", timeout=STEP_MS)


async def check_numbers(page: Any, server: Any, token: str, *, bucket: int) -> None:
    """The page's tiles, tables and charts hold what the API answers for the page's own query."""
    query = await page.evaluate("() => window.pairwireDashboard.statsQuery")
    assert f"bucket={bucket}" in query, query
    status, stats = await rest(server.url, "GET", f"/api/matches/stats?{query}", token)
    assert status == 200, stats
    for tile, key in (("stat-total", "totalMatches"), ("stat-active", "activeMatches"), ("stat-ended", "endedMatches")):
        await expect(page.locator(f"#{tile}")).to_have_text(str(stats[key]))
    assert float(await page.locator("#stat-average").get_attribute("data-value")) == stats["averageDuration"]
    await expect(page.locator("#mode-video")).to_have_text(str(stats["matchesByMode"]["VIDEO"]))
    await expect(page.locator("#mode-text")).to_have_text(str(stats["matchesByMode"]["TEXT"]))
    drawn = await page.evaluate(
        """() => {
          const data = (id) => window.Chart.getChart(document.getElementById(id)).data;
          return {
            bars: data('matches-chart').datasets[0].data,
            mode: data('mode-chart').datasets[0].data,
            activity: data('activity-chart').datasets.map(d => d.data.length),
            rows: document.querySelectorAll('#matches-table tbody tr').length,
          };
        }"""
    )
    assert drawn["bars"] == [b["count"] for b in stats["matchesByTimeRange"]], drawn
    assert drawn["rows"] == len(stats["matchesByTimeRange"])
    assert drawn["mode"] == [stats["matchesByMode"]["VIDEO"], stats["matchesByMode"]["TEXT"]]
    history_query = await page.evaluate("() => window.pairwireDashboard.historyQuery")
    status, history = await rest(server.url, "GET", f"/api/activity/history?{history_query}", token)
    assert status == 200, history
    points = len(history["timeline"])
    assert 1 <= points <= 200 and drawn["activity"] == [points] * 3, (points, drawn)
