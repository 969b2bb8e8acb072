"""Files in the widget, in a real browser against the real server (CONTRACT §7): attached with the
button, pasted or dropped, uploaded with progress, removable until sent, refused in plain words, and
shown in the conversation — pictures inline, other files as download links.

Every wait is on the page (Playwright's ``expect``), the fake Slack's ``wait_for`` or an upload held
by a route until the test lets it go — no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import FilePayload, Locator, Page, Route, expect

from tests.browser.conftest import Browse, EmbeddingSite, Visit, thread_root
from tests.browser.test_widget_page import axe_violations
from tests.fakes.slack_api import FakeSlack
from tests.harness import BridgeFactory, RunningBridge, SlackAgent, Visitor
from tests.images import png

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

Screenshot = Callable[[Page, str], Awaitable[Path]]
BIKES = {"name": "Acme Bikes", "greeting": "Hi! We usually answer within a minute."}
#: an agent's answer with formatting, as typed in Slack (mrkdwn)
FORMATTED = (
    "*Thanks, that helps!* The rear hub is cracked. Two options:\n"
    "• *Repair* it under warranty: free, 3 days\n"
    "• *Swap* the wheel: €89, ready tomorrow\n"
    "Book a slot at <https://acme.example/service|our service desk>."
)

# A picture drawn by the browser itself: a bike on a sky, as PNG bytes (base64).
DRAW_BIKE = """() => {
    const c = document.createElement('canvas');
    c.width = 320; c.height = 200;
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 0, 200);
    sky.addColorStop(0, '#bfe3ff'); sky.addColorStop(1, '#f4f1ea');
    g.fillStyle = sky; g.fillRect(0, 0, 320, 200);
    g.fillStyle = '#8d6e4a'; g.fillRect(0, 170, 320, 30);
    g.lineWidth = 7; g.strokeStyle = '#222';
    for (const x of [85, 235]) { g.beginPath(); g.arc(x, 128, 42, 0, 7); g.stroke(); }
    g.lineWidth = 6; g.strokeStyle = '#7a2e0e'; g.beginPath();
    g.moveTo(85, 128); g.lineTo(140, 75); g.lineTo(215, 75); g.lineTo(235, 128);
    g.moveTo(140, 75); g.lineTo(160, 128); g.lineTo(215, 75); g.moveTo(85, 128); g.lineTo(160, 128);
    g.moveTo(130, 58); g.lineTo(158, 58); g.moveTo(205, 55); g.lineTo(228, 48);
    g.stroke();
    g.lineWidth = 4; g.strokeStyle = '#d92d20'; g.beginPath(); g.arc(235, 128, 14, 0, 7); g.stroke();
    return c.toDataURL('image/png').split(',')[1];
}"""

# Files handed to an element as a paste or a drop would: the event, with a DataTransfer of Files.
HAND_OVER = """(el, [kind, files]) => {
    const data = new DataTransfer();
    for (const f of files) {
        const bytes = Uint8Array.from(atob(f.base64), c => c.charCodeAt(0));
        data.items.add(new File([bytes], f.name, {type: f.type}));
    }
    const init = {bubbles: true, cancelable: true, composed: true};
    if (kind === 'paste') return el.dispatchEvent(new ClipboardEvent('paste', {...init, clipboardData: data}));
    el.dispatchEvent(new DragEvent('dragover', {...init, dataTransfer: data}));
    return el.dispatchEvent(new DragEvent('drop', {...init, dataTransfer: data}));
}"""


def as_file(name: str, data: bytes, mime: str = "image/png") -> FilePayload:
    """A file for ``set_input_files`` or a file chooser."""
    return {"name": name, "mimeType": mime, "buffer": data}


def for_page(name: str, data: bytes, mime: str = "image/png") -> dict[str, str]:
    return {"name": name, "type": mime, "base64": base64.b64encode(data).decode()}


class HeldUploads:
    """Holds every upload (``POST …/attachments``) in the route until ``release()``: what is on screen
    while a file is on its way can be checked without racing the upload."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.go = asyncio.Event()

    async def handle(self, route: Route) -> None:
        self.arrived.set()
        await self.go.wait()
        with contextlib.suppress(PlaywrightError):  # the widget gave up on it meanwhile (Remove)
            await route.continue_()

    async def install(self, page: Page) -> None:
        await page.route("**/api/v1/conversations/*/attachments", self.handle)

    def release(self) -> None:
        self.go.set()


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[Callable[[Visit, RunningBridge], Awaitable[Visitor]]]:
    """``await api(visit, bridge)``: the widget's conversation through the HTTP API, with its token."""
    opened: list[Visitor] = []

    async def of(visit: Visit, bridge: RunningBridge) -> Visitor:
        saved = await visit.page.evaluate("() => JSON.parse(localStorage.getItem('sitechat:acme'))")
        visitor = Visitor(bridge.url)
        visitor.conversation_id, visitor.token = saved["id"], saved["token"]
        opened.append(visitor)
        return visitor

    yield of
    for visitor in opened:
        await visitor.close()


def file_chip(visit: Visit, name: str) -> Locator:
    """A pending file of the next message: its list item, with its progress and its Remove button."""
    return visit.widget.host.locator("#files li", has_text=name)


def shared_files(slack: FakeSlack, root: dict[str, Any]) -> list[Any]:
    """The files shared into the thread (a Slack adapter that uploads them: CONTRACT §7)."""
    return [f for f in slack.files if f.completed and f.thread_ts == root["ts"]]


def in_thread(slack: FakeSlack, root: dict[str, Any], words: str) -> bool:
    """The visitor's line with ``words`` is in the thread: as a reply, or as the comment of the files shared with it."""
    replies = [m.get("text", "") for m in slack.replies("C0SUPPORT", root["ts"])]
    comments = [f.initial_comment or "" for f in shared_files(slack, root)]
    return any(words in text for text in replies + comments)


async def visitor_messages(visitor: Visitor) -> list[dict[str, Any]]:
    return [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "visitor"]


async def test_a_picture_attached_with_the_button_shows_inline_and_reaches_the_thread(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    browse: Browse,
    api: Callable[[Visit, RunningBridge], Awaitable[Visitor]],
    screenshot: Screenshot,
) -> None:
    bridge = await make_bridge(fake_slack, site=BIKES)
    agent = make_agent(bridge)
    visit = await browse(bridge.url + "/demo")
    chat, page = visit.widget, visit.page
    bike = base64.b64decode(await page.evaluate(DRAW_BIKE))
    held = HeldUploads()
    await held.install(page)

    await chat.open()
    await chat.start_chat("Ann Lee", "ann@example.com")
    attach = chat.button("Attach a file")
    await expect(attach).to_be_visible()
    await chat.host.locator("#file-input").set_input_files(as_file("rear-wheel.png", bike))

    # on its way: a named progress bar and a way to take it back
    progress = page.get_by_role("progressbar", name="Uploading rear-wheel.png", exact=True)
    await expect(progress).to_be_visible()
    await expect(chat.button("Remove rear-wheel.png")).to_be_visible()
    await held.arrived.wait()
    held.release()
    await expect(progress).to_have_count(0)
    await expect(file_chip(visit, "rear-wheel.png")).to_be_visible()

    await chat.say("Here is the crack in the rear hub")
    await expect(file_chip(visit, "rear-wheel.png")).to_have_count(0)  # sent with the message
    mine = chat.log.locator(".m.visitor", has_text="Here is the crack in the rear hub")
    picture = mine.get_by_role("img", name="rear-wheel.png", exact=True)
    await expect(picture).to_be_visible()
    await expect(mine).not_to_contain_text("Sending…")
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == 320  # loaded from the bridge
    link = mine.get_by_role("link", name="rear-wheel.png", exact=True)
    assert (await link.get_attribute("href") or "").startswith(f"{bridge.url}/api/v1/attachments/")
    await expect(link).to_have_attribute("target", "_blank")
    assert {"noopener", "noreferrer"} <= set((await link.get_attribute("rel") or "").split())

    # the bridge has the file with the message; the thread has the line
    visitor = await api(visit, bridge)
    [message] = await visitor_messages(visitor)
    assert message["text"] == "Here is the crack in the rear hub"
    [file] = message["attachments"]
    assert (file["name"], file["size"], file["content_type"]) == ("rear-wheel.png", len(bike), "image/png")
    status, served, _ = await visitor.download(file["url"])
    assert status == 200 and served == bike
    root = await thread_root(fake_slack, "C0SUPPORT", "Ann Lee")
    # the thread gets the picture itself, shared as a file with the line (CONTRACT §7)
    [record] = await fake_slack.wait_for(lambda: shared_files(fake_slack, root), message="the picture in the thread")
    assert (record.name, record.data) == ("rear-wheel.png", bike)
    await fake_slack.wait_for(lambda: in_thread(fake_slack, root, "crack in the rear hub"), message="the line")

    # the agent answers with formatting: the picture and the answer, as the README shows them
    status, _ = await agent.reply("C0SUPPORT", root["ts"], FORMATTED)
    assert status == 200
    reply = chat.log.locator(".m.agent", has_text="The rear hub is cracked")
    await expect(reply.locator("strong").first).to_have_text("Thanks, that helps!")
    await expect(reply.locator("li")).to_have_count(2)
    await expect(reply.get_by_role("link", name="our service desk")).to_have_attribute(
        "href", "https://acme.example/service"
    )
    await chat.message_box.fill("Repair please, I can bring it on Monday")
    await screenshot(page, "widget-files")


async def test_a_pasted_screenshot_and_a_dropped_file_can_be_removed_before_sending(
    slack_bridge: RunningBridge,
    fake_slack: FakeSlack,
    browse: Browse,
    api: Callable[[Visit, RunningBridge], Awaitable[Visitor]],
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat, page = visit.widget, visit.page
    await chat.open()
    await chat.start_chat("Pia", "pia@example.com")

    # a screenshot from the clipboard, pasted into the message box
    shot = png(4, 3)
    await chat.message_box.evaluate(HAND_OVER, ["paste", [for_page("image.png", shot)]])
    await expect(file_chip(visit, "image.png")).to_be_visible()
    # a PDF dropped on the chat
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    dropped = ["drop", [for_page("invoice.pdf", pdf, "application/pdf")]]
    # dispatched: not handled (defaultPrevented) means the browser would open the file instead
    assert await chat.log.evaluate(HAND_OVER, dropped) is False
    await expect(file_chip(visit, "invoice.pdf")).to_be_visible()
    await expect(page.get_by_role("progressbar")).to_have_count(0)  # both uploaded

    # the PDF was the wrong one: removed, it does not go
    await chat.button("Remove invoice.pdf").click()
    await expect(file_chip(visit, "invoice.pdf")).to_have_count(0)
    await expect(chat.message_box).to_be_focused()
    await chat.message_box.press("Enter")  # no text: the picture alone is a message

    mine = chat.log.locator(".m.visitor")
    await expect(mine.get_by_role("img", name="image.png", exact=True)).to_be_visible()
    await expect(mine.get_by_text("invoice.pdf")).to_have_count(0)
    await expect(mine).not_to_contain_text("Sending…")  # stored, not only drawn as pending
    visitor = await api(visit, slack_bridge)
    [message] = await visitor_messages(visitor)
    assert message["text"] == ""
    assert [(a["name"], a["size"]) for a in message["attachments"]] == [("image.png", len(shot))]

    # a file that is no picture shows as a download link with its size
    await chat.log.evaluate(HAND_OVER, dropped)
    await expect(file_chip(visit, "invoice.pdf")).to_be_visible()
    await expect(page.get_by_role("progressbar")).to_have_count(0)
    await chat.say("and the invoice")
    download = chat.log.locator(".m.visitor", has_text="and the invoice").get_by_role("link", name="invoice.pdf (1 KB)")
    await expect(download).to_have_attribute("download", "invoice.pdf")
    await expect(download).to_have_attribute("target", "_blank")
    await expect(download).not_to_contain_text("Sending…")


async def test_a_file_of_a_refused_type_is_said_in_plain_words_and_nothing_is_sent(
    slack_bridge: RunningBridge,
    fake_slack: FakeSlack,
    browse: Browse,
    api: Callable[[Visit, RunningBridge], Awaitable[Visitor]],
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat, page = visit.widget, visit.page
    await chat.open()
    await chat.start_chat("Rolf", "rolf@example.com")
    page_as_png = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
    await chat.host.locator("#file-input").set_input_files(as_file("holiday.png", page_as_png))

    error = page.get_by_role("alert").filter(has_text="holiday.png")
    await expect(error).to_have_text("holiday.png: files of this type cannot be sent.")
    await expect(file_chip(visit, "holiday.png")).to_have_count(0)
    await chat.message_box.press("Enter")  # nothing to send
    await expect(chat.log.locator(".m")).to_have_count(0)
    visitor = await api(visit, slack_bridge)
    assert await visitor_messages(visitor) == []

    # the next file that is fine clears the message and goes
    await chat.host.locator("#file-input").set_input_files(as_file("real.png", png()))
    await expect(error).to_have_count(0)
    await expect(file_chip(visit, "real.png")).to_be_visible()
    await expect(page.get_by_role("progressbar")).to_have_count(0)
    await chat.say("This one is a real picture")
    await expect(chat.log.get_by_role("img", name="real.png", exact=True)).to_be_visible()
    await expect(chat.log).not_to_contain_text("Sending…")  # stored, not only drawn as pending
    [message] = await visitor_messages(visitor)
    assert [a["name"] for a in message["attachments"]] == ["real.png"]


async def test_files_by_keyboard_only_and_accessible_with_a_file_in_view(
    slack_bridge: RunningBridge,
    fake_slack: FakeSlack,
    agent: SlackAgent,
    browse: Browse,
    axe_source: Path,
) -> None:
    visit = await browse(slack_bridge.url + "/demo", bypass_csp=True, reduced_motion="reduce")  # axe
    chat, page = visit.widget, visit.page
    held = HeldUploads()
    await held.install(page)
    # file choosers are intercepted from now on: the switch is not awaited, so it must not race the first one
    page.on("filechooser", lambda _chooser: None)
    await chat.open()
    await chat.start_chat("Kai", "kai@example.com")

    # the attach button is the stop before the message box; Enter opens the browser's file chooser
    await page.keyboard.press("Shift+Tab")
    attach = chat.button("Attach a file")
    await expect(attach).to_be_focused()
    async with page.expect_file_chooser() as chosen:
        await page.keyboard.press("Enter")
    chooser = await chosen.value
    assert chooser.is_multiple()
    await chooser.set_files(as_file("wrong.png", png()))
    progress = page.get_by_role("progressbar", name="Uploading wrong.png", exact=True)
    await expect(progress).to_be_visible()
    assert await axe_violations(visit, axe_source) == [], "a file on its way"

    # Remove is reachable by keyboard too (before the attach button), and takes the file back
    await page.keyboard.press("Shift+Tab")
    await expect(chat.button("Remove wrong.png")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(file_chip(visit, "wrong.png")).to_have_count(0)
    await expect(chat.message_box).to_be_focused()
    held.release()

    await page.keyboard.press("Shift+Tab")
    await expect(attach).to_be_focused()
    async with page.expect_file_chooser() as chosen:
        await page.keyboard.press("Space")
    await (await chosen.value).set_files(as_file("right.png", png(3, 3)))
    await expect(file_chip(visit, "right.png")).to_be_visible()
    await expect(page.get_by_role("progressbar")).to_have_count(0)
    await page.keyboard.press("Tab")
    await expect(chat.message_box).to_be_focused()
    await page.keyboard.type("Sent with the keyboard only")
    await page.keyboard.press("Enter")
    mine = chat.log.locator(".m.visitor", has_text="Sent with the keyboard only")
    await expect(mine.get_by_role("img", name="right.png", exact=True)).to_be_visible()
    await expect(mine).not_to_contain_text("Sending…")

    # and with the team's answer under it
    root = await thread_root(fake_slack, "C0SUPPORT", "Kai")
    await agent.reply("C0SUPPORT", root["ts"], "Thanks Kai, got it")
    await expect(chat.line("Thanks Kai, got it")).to_be_visible()
    assert await axe_violations(visit, axe_source) == [], "the conversation with a picture"


async def test_a_file_sent_while_the_server_is_down_goes_once_when_it_is_back(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    browse: Browse,
    api: Callable[[Visit, RunningBridge], Awaitable[Visitor]],
) -> None:
    bridge = await make_bridge(fake_slack)
    visit = await browse(bridge.url + "/demo")
    chat, page = visit.widget, visit.page
    await chat.open()
    await chat.start_chat("Dora", "dora@example.com")
    await chat.host.locator("#file-input").set_input_files(as_file("receipt.png", png(5, 5)))
    await expect(file_chip(visit, "receipt.png")).to_be_visible()
    await expect(page.get_by_role("progressbar")).to_have_count(0)

    await bridge.stop()
    await expect(page.get_by_role("status").filter(has_text="Reconnecting…")).to_be_visible()
    await chat.say("The receipt, sent while you were down")
    pending = chat.log.locator(".m", has_text="The receipt, sent while you were down")
    await expect(pending).to_contain_text("Sending…")
    await expect(pending.get_by_role("img", name="receipt.png", exact=True)).to_have_count(1)
    await bridge.start()

    await expect(pending).not_to_contain_text("Sending…", timeout=15_000)
    await expect(pending.get_by_role("img", name="receipt.png", exact=True)).to_be_visible()
    root = await thread_root(fake_slack, "C0SUPPORT", "Dora")
    await fake_slack.wait_for(
        lambda: in_thread(fake_slack, root, "sent while you were down"), timeout=15, message="the line of the outage"
    )
    await bridge.wait_idle()
    assert [f.name for f in shared_files(fake_slack, root)] == ["receipt.png"]  # shared once
    visitor = await api(visit, bridge)
    [message] = await visitor_messages(visitor)  # stored once, with its file
    assert message["text"] == "The receipt, sent while you were down"
    assert [a["name"] for a in message["attachments"]] == ["receipt.png"]
    await expect(chat.log.locator(".m.visitor")).to_have_count(1)


async def test_a_picture_from_a_page_on_another_origin(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, embedding_site: EmbeddingSite, browse: Browse
) -> None:
    """The upload (a CORS request with the token) and the picture's link work from the site's own pages."""
    bridge = await make_bridge(fake_slack, site={"origins": [embedding_site.origin]})
    embedding_site.bridge_url = bridge.url
    embedding_site.body = '<!doctype html><title>Shop</title><script src="{BRIDGE}/widget.js" data-site=acme></script>'
    visit = await browse(embedding_site.origin + "/")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Otto", "otto@example.com")
    await chat.host.locator("#file-input").set_input_files(as_file("label.png", png(6, 2)))
    await expect(file_chip(visit, "label.png")).to_be_visible()
    await expect(visit.page.get_by_role("progressbar")).to_have_count(0)
    await chat.say("From the shop")
    picture = chat.log.get_by_role("img", name="label.png", exact=True)
    await expect(picture).to_be_visible()
    await expect(chat.log).not_to_contain_text("Sending…")
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == 6
