"""Browser tests: Debian's Chromium (never a downloaded one) driven by Playwright, against the real
server on 127.0.0.1, inside a network namespace that has only loopback.

Run them as `make test` does:

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest tests/web'

Outside such a namespace every test here is skipped with the reason (under CI=true: fails), so
that WebRTC in a real browser never gathers or probes a non-loopback address. PostgreSQL and
Redis are unreachable in there; these tests use SQLite.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from tests.web.browser import MatchPage, OpenPage


IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
SIOCGIFFLAGS = 0x8913


def _interface_flags(name: str) -> int:
    """SIOCGIFFLAGS for `name`, asked of the kernel in this process's own network namespace.

    (/sys/class/net is no use here: it shows the namespace that mounted sysfs, not ours.)
    """
    request = struct.pack("16sH14x", name.encode()[:15], 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
    return struct.unpack("16sH14x", answer)[1]


def _isolation_problem() -> str | None:
    """Why this process is not in a loopback-only network namespace, or None if it is."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError as exc:
        return f"cannot list network interfaces ({exc})"
    up = []
    for name in names:
        try:
            flags = _interface_flags(name)
        except OSError:
            flags = IFF_UP  # cannot tell: assume the worst
        if flags & IFF_UP and not flags & IFF_LOOPBACK:
            up.append(name)
    if up:
        return f"non-loopback network interfaces are up ({', '.join(up)})"
    for name in names:
        try:
            flags = _interface_flags(name)
        except OSError:
            continue
        if flags & IFF_LOOPBACK and flags & IFF_UP:
            return None
    return "the loopback interface is down (run `ip link set lo up` in the namespace)"


ISOLATION_PROBLEM = _isolation_problem()


@pytest.fixture(scope="session", autouse=True)
def loopback_only_network() -> None:
    """Browser tests run only where the network is loopback alone (see the module docstring)."""
    problem = ISOLATION_PROBLEM
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    elif problem is not None:
        problem = (
            f"browser tests need a network namespace with only loopback: {problem}. Run them with "
            "`unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest tests/web'` "
            "(as `make test` does)"
        )
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem} (required under CI=true)", pytrace=False)
    pytest.skip(problem)


@pytest.fixture
def db_kind() -> str:
    """No PostgreSQL inside the namespace: SQLite only."""
    return "sqlite"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"browser screenshots: {SCREENSHOTS}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")


@pytest.fixture(scope="session")
def screenshot_dir(loopback_only_network: None) -> Iterator[Path]:
    """Where each test writes PNGs of the page states; emptied of old PNGs once per session."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots of the page states go to {SCREENSHOTS}")
    yield SCREENSHOTS
    print(f"\nscreenshots of the page states: {SCREENSHOTS}")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for one test, closed afterwards whatever happened."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000, handle_sigint=False
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def open_page(
    browser: Browser, server: Any, screenshot_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[OpenPage]:
    """Open a page (the match page unless `path=` says otherwise) for a person in their own browser
    context; every page is closed at the end, and none may have thrown."""
    pages: list[MatchPage] = []
    prefix = request.node.name.removeprefix("test_").replace("[", "-").replace("]", "")

    async def open_one(name: str, **kwargs: Any) -> MatchPage:
        page = await MatchPage.open(browser, server.url, name, screenshot_dir, prefix, **kwargs)
        pages.append(page)
        return page

    yield open_one
    errors = [f"{p.name}: {e}" for p in pages for e in p.errors]
    for page in pages:
        with contextlib.suppress(Exception):  # the browser fixture closes whatever is left
            await page.close()
    assert not errors, f"uncaught errors in the page: {errors}"
