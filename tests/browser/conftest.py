"""Browser fixtures: one headless Chromium for the session, a fresh browser context per page.

Playwright's async API, the bridge and the fake Slack all run in the *session* event loop (the test
modules say ``pytest.mark.asyncio(loop_scope="session")``), so the fixtures of ``tests/conftest.py``
that start servers are redefined here with ``loop_scope="session"``: a server started in another
loop would never answer while the test's loop runs.

Chromium is Debian's (``make chromium``); axe-core comes from npm (``make node``). Either missing
fails the tests with a clear message: CI must not skip them. So does a missing or stale widget build:
the pages load ``/widget.js`` from the server, which serves the built, minified file (``make widget``),
so the tests check what ships, not the sources in ``widget/src/``.

``SITECHAT_SCREENSHOTS=1`` writes the screenshots the tests take into ``docs/`` (otherwise into the
test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Dialog, Locator, Page, async_playwright, expect

from tests.fakes.slack_api import FakeSlack
from tests.harness import BridgeFactory, RunningBridge, SlackAgent, bridge_factory, free_port, root_of

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SITECHAT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDGET_BUILD = ROOT / "widget_server" / "static" / "widget.js"
DOCS = ROOT / "docs"
VIEWPORT = {"width": 1100, "height": 720}

# Generous for a loaded CI machine; a passing run never waits this long.
expect.set_options(timeout=10_000)


# ------------------------------------------------------------------ servers, in the session loop


@pytest_asyncio.fixture(loop_scope="session")
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@pytest_asyncio.fixture(loop_scope="session")
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


@pytest_asyncio.fixture(loop_scope="session")
async def slack_bridge(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> RunningBridge:
    return await make_bridge(fake_slack)


@pytest_asyncio.fixture(loop_scope="session")
async def agent(slack_bridge: RunningBridge, fake_slack: FakeSlack) -> AsyncIterator[SlackAgent]:
    a = SlackAgent(slack_bridge.url, fake_slack)
    yield a
    await a.close()


@pytest_asyncio.fixture(loop_scope="session")
async def make_agent(fake_slack: FakeSlack) -> AsyncIterator[Callable[[RunningBridge], SlackAgent]]:
    """``make_agent(bridge)``: Alice in the Slack workspace, answering through that bridge."""
    agents: list[SlackAgent] = []

    def make(bridge: RunningBridge) -> SlackAgent:
        agents.append(SlackAgent(bridge.url, fake_slack))
        return agents[-1]

    yield make
    for a in agents:
        await a.close()


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="session", autouse=True)
def widget_build() -> Path:
    """The built widget the server ships; missing or older than its sources fails every browser test."""
    if not WIDGET_BUILD.is_file():
        pytest.fail(
            f"The widget is not built: {WIDGET_BUILD.relative_to(ROOT)} is missing. Run `make widget` "
            "(it builds widget/src/ with esbuild; `make test` does it by itself).",
            pytrace=False,
        )
    sources = [
        *(ROOT / "widget" / "src").iterdir(),
        ROOT / "widget" / "build.mjs",
        ROOT / "widget" / "catalogue.mjs",
        # the language packs are built from the catalogue with the widget
        *(ROOT / "bridge" / "texts").glob("*/LC_MESSAGES/*.po"),
    ]
    newer = [p.relative_to(ROOT) for p in sources if p.stat().st_mtime > WIDGET_BUILD.stat().st_mtime]
    if newer:
        pytest.fail(
            f"The widget build is older than its sources ({', '.join(map(str, newer))}): run `make widget` "
            "(or `node widget/build.mjs`).",
            pytrace=False,
        )
    return WIDGET_BUILD


def _chromium_present() -> bool:
    return (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) or shutil.which(CHROMIUM) is not None


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not _chromium_present():
        pytest.fail(
            f"Chromium is needed for the browser tests and is not at {CHROMIUM}. Install it with `make chromium` "
            "(apt-get install -y --no-install-recommends chromium fonts-liberation), or point SITECHAT_CHROMIUM "
            "at a Chromium binary. Never `playwright install` here.",
            pytrace=False,
        )
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


class Widget:
    """The embedded widget as a visitor meets it: by role and name, through its open shadow root."""

    def __init__(self, page: Page) -> None:
        self.page = page
        #: the launcher is one button: "Open chat" while closed, "Close chat" while open
        self.launcher = page.get_by_role("button", name="Open chat", exact=True)
        self.close_launcher = page.get_by_role("button", name="Close chat", exact=True)
        self.panel = page.get_by_role("dialog")
        self.log = page.get_by_role("log")
        self.message_box = page.get_by_role("textbox", name="Message", exact=True)
        #: the stars: one group of buttons (CONTRACT §6), named by its question
        self.rating = page.get_by_role("group", name="How was this conversation?", exact=True)
        self.host = page.locator("sitechat-widget")
        #: the polite live region that reads out what the team writes (the log itself stays quiet)
        self.announcer = self.host.locator("#announcer")

    def textbox(self, name: str) -> Locator:
        return self.page.get_by_role("textbox", name=name, exact=True)

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def star(self, name: str) -> Locator:
        """One option of the rating, "1 star" … "5 stars": a button in the rating's group (pressed when chosen)."""
        return self.rating.get_by_role("button", name=name, exact=True)

    def line(self, text: str) -> Locator:
        """A message bubble's text in the log, exactly."""
        return self.log.get_by_text(text, exact=True)

    async def open(self) -> None:
        await self.launcher.click()
        await expect(self.panel).to_be_visible()
        await expect(self.close_launcher).to_have_attribute("aria-expanded", "true")

    async def start_chat(self, name: str = "Ann", email: str = "ann@example.com", topic: str | None = None) -> None:
        await self.textbox("Name").fill(name)
        await self.textbox("Email").fill(email)
        topics = self.page.get_by_role("combobox", name="Topic", exact=True)
        if topic is not None:
            await topics.select_option(label=topic)
        await self.button("Start chat").click()
        await expect(self.message_box).to_be_focused()

    async def say(self, text: str) -> None:
        await self.message_box.fill(text)
        await self.message_box.press("Enter")
        await expect(self.message_box).to_have_value("")


@dataclass
class Visit:
    """One page in its own browser context (own localStorage), with what it did that no page should."""

    page: Page
    context: BrowserContext
    widget: Widget
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


Browse = Callable[..., Awaitable[Visit]]


@pytest_asyncio.fixture(loop_scope="session")
async def browse(browser: Browser, make_bridge: BridgeFactory) -> AsyncIterator[Browse]:
    """``await browse(url, **context_options)``: a fresh context and page, loaded (``tab_of=visit``: a tab).

    Depends on ``make_bridge`` so that pages close before the bridges stop. At the end: no page ever
    opened a dialog (alert/confirm/prompt) and no script error escaped.
    """
    visits: list[Visit] = []

    async def open_page(url: str, *, tab_of: Visit | None = None, **options: Any) -> Visit:
        """A new context, or with ``tab_of`` another tab of that visit's context (shared storage)."""
        context = tab_of.context if tab_of else await browser.new_context(**{"viewport": VIEWPORT, **options})
        page = await context.new_page()
        visit = Visit(page, context, Widget(page))

        async def on_dialog(dialog: Dialog) -> None:
            visit.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: visit.errors.append(str(exc)))
        page.on("console", lambda msg: visit.console.append(f"{msg.type}: {msg.text}"))
        visits.append(visit)
        await page.goto(url)
        return visit

    yield open_page
    for context in {id(v.context): v.context for v in visits}.values():
        await context.close()
    for visit in visits:
        assert not visit.dialogs, f"a page opened dialogs: {visit.dialogs}"
        assert not visit.errors, f"uncaught script errors in the page: {visit.errors}"


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Awaitable[Path]]:
    """``await screenshot(page, "widget-open")``: into docs/ with SITECHAT_SCREENSHOTS=1, else tmp_path."""
    into = DOCS if os.environ.get("SITECHAT_SCREENSHOTS") == "1" else tmp_path

    async def take(page: Page, name: str) -> Path:
        path = into / f"{name}.png"
        await page.screenshot(path=str(path), animations="disabled", caret="hide")
        return path

    return take


@pytest.fixture
def axe_source() -> Path:
    if not AXE.is_file():
        pytest.fail(f"axe-core is needed at {AXE} for the accessibility test: run `make node`", pytrace=False)
    return AXE


# ------------------------------------------------------------------ helpers


async def thread_root(slack: FakeSlack, channel: str, visitor: str) -> dict[str, Any]:
    """The thread root the bridge posted for ``visitor``'s conversation in ``channel``, once it is there."""
    root = await slack.wait_for(lambda: root_of(slack, channel, visitor), message=f"{visitor}'s thread in {channel}")
    assert root is not None
    return root


# ------------------------------------------------------------------ a page on another origin


class EmbeddingSite:
    """Someone's website on another origin (another port) that embeds the widget with one script tag.

    Every ``GET`` serves ``body`` (with ``{BRIDGE}`` replaced by the bridge's URL). Its ``origin`` is
    known before the bridge starts, so it can go into the site's ``origins``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.bridge_url = ""
        self.body = ""
        self._runner: web.AppRunner | None = None

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.body.replace("{BRIDGE}", self.bridge_url), content_type="text/html")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def embedding_site() -> AsyncIterator[EmbeddingSite]:
    site = EmbeddingSite()
    await site.start()
    yield site
    await site.stop()
