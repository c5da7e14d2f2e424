"""Driving the match page in a real browser: one `MatchPage` per person (own browser context)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

STEP_MS = 20_000  # bound on each wait for the page, the server or the media
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class MatchPage:
    """One person: a fresh browser context (own sessionStorage) with the match page open."""

    def __init__(self, context: BrowserContext, page: Page, name: str, shots: Path, prefix: str) -> None:
        self.context = context
        self.page = page
        self.name = name
        self.shots = shots
        self.prefix = prefix
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    @classmethod
    async def open(
        cls,
        browser: Browser,
        base_url: str,
        name: str,
        shots: Path,
        prefix: str,
        *,
        viewport: dict[str, int] | None = None,
        init_script: str | None = None,
        path: str = "/",
    ) -> MatchPage:
        """A new browser context at `path`: the match page (signed out) unless told otherwise."""
        phone = viewport == PHONE
        context = await browser.new_context(
            base_url=base_url,
            viewport=viewport or DESKTOP,
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
        )
        context.set_default_timeout(STEP_MS)
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        match_page = cls(context, page, name, shots, prefix)
        await page.goto(path)
        if path == "/":
            await expect(page.get_by_role("heading", name="Meet someone new")).to_be_visible()
        return match_page

    async def close(self) -> None:
        await self.context.close()

    def diagnostics(self) -> str:
        return f"{self.name}: page errors {self.errors}; console {self.console[-30:]}"

    # -- actions ------------------------------------------------------------------------

    async def sign_in(self, topics: str = "", seniority: str = "") -> None:
        page = self.page
        await page.get_by_label("Display name").fill(self.name)
        await page.get_by_label("Topics").fill(topics)
        if seniority:
            await page.get_by_label("Seniority").select_option(seniority)
        await page.get_by_role("button", name="Sign in as a guest").click()
        await self.wait_state("idle")
        await expect(page.locator("#whoami")).to_have_text(f"Signed in as {self.name}")
        await self.wait_connected()

    async def start(self, mode: str = "video") -> None:
        page = self.page
        await page.get_by_label("Video call" if mode == "video" else "Text chat").check()
        await page.get_by_role("button", name="Start", exact=True).click()
        # A partner already waiting can match at once: searching may be over before we look.
        await self.wait_state("searching", "matched", "in-call")

    async def click(self, name: str) -> None:
        await self.page.get_by_role("button", name=name, exact=True).click()

    async def chat(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        await box.fill(text)
        await self.page.get_by_role("button", name="Send", exact=True).click()

    async def screenshot(self, state: str, **options: Any) -> Path:
        """A PNG of the whole page (`options` go to Playwright, e.g. scale="css", full_page=False)."""
        path = self.shots / f"{self.prefix}-{state}-{self.name.lower()}.png"
        await self.page.screenshot(path=str(path), **{"full_page": True, **options})
        return path

    # -- observations ---------------------------------------------------------------------

    async def hook(self, expression: str) -> Any:
        return await self.page.evaluate(f"() => window.pairwire.{expression}")

    async def wait_state(self, *states: str, timeout_ms: int = STEP_MS) -> None:
        """Until window.pairwire.state is one of `states`."""
        try:
            await self.page.wait_for_function(
                "states => window.pairwire && states.includes(window.pairwire.state)",
                arg=list(states),
                timeout=timeout_ms,
            )
        except Exception as exc:
            current = await self.page.evaluate("() => window.pairwire && window.pairwire.state")
            raise AssertionError(
                f"{self.name}: state {current!r}, expected one of {states}\n{self.diagnostics()}"
            ) from exc

    async def wait_connected(self) -> None:
        await self.page.wait_for_function("() => window.pairwire && window.pairwire.connected", timeout=STEP_MS)

    async def stats(self) -> dict[str, Any] | None:
        return await self.page.evaluate("() => window.pairwire.stats()")

    async def wait_frames(self, frames: int = 10, timeout: float = STEP_MS / 1000) -> dict[str, Any]:
        """Poll the page's own getStats() until inbound video decoded `frames` frames."""
        stats: dict[str, Any] | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            stats = await self.stats()
            if stats and stats["framesDecoded"] >= frames:
                return stats
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"{self.name}: inbound video decoded too few frames: {json.dumps(stats)}\n{self.diagnostics()}"
        )

    async def wait_video_playing(self) -> None:
        """The remote <video> element itself shows frames (not only the decoder counters)."""
        await self.page.wait_for_function(
            "() => { const v = document.getElementById('remote-video');"
            " return v.videoWidth > 0 && !v.paused && v.readyState >= 2; }",
            timeout=STEP_MS,
        )


OpenPage = Callable[..., Awaitable[MatchPage]]


async def rest(base_url: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One REST call from the test itself (not through a page): (status, decoded JSON body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=STEP_MS / 1000)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.request(method, base_url + path, json=body, headers=headers) as response:
            return response.status, await response.json()


async def matched_pair(open_page: OpenPage, mode: str, **b_kwargs: Any) -> tuple[MatchPage, MatchPage]:
    """Ada and Bo, sharing a topic, both started in `mode` and in a call."""
    ada = await open_page("Ada")
    bo = await open_page("Bo", **b_kwargs)
    await ada.sign_in(topics="webrtc, rust", seniority="senior")
    await bo.sign_in(topics="WebRTC, python", seniority="mid")
    await ada.start(mode)
    await bo.start(mode)
    for page in (ada, bo):
        await page.wait_state("in-call")
    return ada, bo


expect.set_options(timeout=STEP_MS // 2)
