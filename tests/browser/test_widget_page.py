"""The widget as part of a page: offline form, accessibility, the page API, identity, other origins."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Page, expect

from config.office_hours import OfficeHours
from tests.browser.conftest import BridgeFactory, Browse, EmbeddingSite, Visit, thread_root
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, root_of

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

Screenshot = Callable[[Page, str], Awaitable[Path]]
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def closed_now() -> str:
    """Office hours that do not include now (the usual ones if we are outside them, as the docs show)."""
    usual = "Mon-Fri 09:00-17:00 Europe/Berlin"
    now = datetime.now(UTC)
    if not OfficeHours.parse(usual).is_open(now):
        return usual
    return f"{DAYS[(now.weekday() - 1) % 7]} 09:00-17:00 UTC"  # yesterday's weekday only


async def test_outside_office_hours_the_visitor_leaves_a_message(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, browse: Browse, screenshot: Screenshot, axe_source: Path
) -> None:
    hours = closed_now()
    bridge = await make_bridge(
        fake_slack,
        site={"name": "Acme Bikes", "greeting": "Hi! We usually answer within a minute.", "office_hours": hours},
    )
    visit = await browse(bridge.url + "/demo", bypass_csp=True)  # for axe
    chat = visit.widget
    await chat.open()
    await expect(chat.panel).to_contain_text("We are not online right now")
    await expect(chat.panel).to_contain_text(f"Office hours: {hours}")
    await expect(chat.button("Start chat")).to_be_hidden()
    await expect(chat.textbox("Name")).to_be_focused()

    await chat.textbox("Name").fill("Olga Berg")
    await chat.textbox("Email").fill("olga@example.org")
    await chat.textbox("Message").fill("Do you ship to Norway? I'd like two Folding Minis.")
    await screenshot(visit.page, "widget-offline")
    assert await axe_violations(visit, axe_source) == [], "the offline form"
    await chat.button("Send message").click()
    await expect(chat.panel.get_by_text("Thank you! We received your message")).to_be_visible()
    await expect(chat.button("Send message")).to_be_hidden()

    def offline_thread() -> list[dict[str, Any]]:
        for m in fake_slack.messages("C0SUPPORT"):
            if m.get("thread_ts") in (None, m["ts"]) and m["text"].startswith("Offline message from Olga Berg"):
                replies = fake_slack.replies("C0SUPPORT", m["ts"])
                if replies:
                    return [m, *replies]
        return []

    root, *replies = await fake_slack.wait_for(offline_thread, message="the offline message in the channel")
    assert "olga@example.org" in root["text"]
    assert any("Do you ship to Norway? I'd like two Folding Minis." in r["text"] for r in replies), replies


async def test_the_email_is_required_offline(make_bridge: BridgeFactory, fake_slack: FakeSlack, browse: Browse) -> None:
    bridge = await make_bridge(fake_slack, site={"office_hours": closed_now()})
    visit = await browse(bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.textbox("Message").fill("No email given")
    await chat.button("Send message").click()
    await expect(chat.textbox("Email")).to_be_focused()  # the browser's own validation, no request sent
    assert await chat.textbox("Email").evaluate("e => e.validity.valueMissing")
    await expect(chat.button("Send message")).to_be_visible()


async def axe_violations(visit: Visit, axe: Path) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings for the widget (its shadow host and everything in it)."""
    if await visit.page.evaluate("() => typeof window.axe") == "undefined":
        await visit.page.add_script_tag(path=str(axe))
    result = await visit.page.evaluate(
        """async () => {
            const r = await axe.run({include: [["sitechat-widget"]]}, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
            }));
        }"""
    )
    return list(result)


async def test_accessibility_and_keyboard_only_use(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse, axe_source: Path
) -> None:
    # the demo page's CSP forbids injected scripts: axe is test tooling, so this context bypasses it
    visit = await browse(slack_bridge.url + "/demo", bypass_csp=True, reduced_motion="reduce")
    chat, page = visit.widget, visit.page

    # keyboard only: Tab reaches the launcher, Enter opens it, focus moves in, Escape closes and returns
    for _ in range(12):
        await page.keyboard.press("Tab")
        if await chat.launcher.evaluate("e => e.getRootNode().activeElement === e"):
            break
    await expect(chat.launcher).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(chat.panel).to_be_visible()
    await expect(chat.textbox("Name")).to_be_focused()
    await expect(chat.close_launcher).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Escape")
    await expect(chat.panel).to_be_hidden()
    await expect(chat.launcher).to_be_focused()
    await expect(chat.launcher).to_have_attribute("aria-expanded", "false")

    await page.keyboard.press("Enter")
    await expect(chat.textbox("Name")).to_be_focused()
    assert await axe_violations(visit, axe_source) == [], "the pre-chat form"

    # the whole pre-chat form by keyboard: type, Tab, choose a topic, Enter
    await page.keyboard.type("Kai")
    await page.keyboard.press("Tab")
    await expect(chat.textbox("Email")).to_be_focused()
    await page.keyboard.type("kai@example.com")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("combobox", name="Topic")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(chat.button("Start chat")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(chat.message_box).to_be_focused()
    await page.keyboard.type("Typed with the keyboard only")
    await page.keyboard.press("Enter")
    root = await thread_root(fake_slack, "C0SUPPORT", "Kai")
    await agent.reply("C0SUPPORT", root["ts"], "Hello Kai, see https://acme.example/docs")
    await expect(chat.line("Hello Kai, see https://acme.example/docs")).to_be_visible()
    await expect(chat.line("Typed with the keyboard only")).to_be_visible()
    # the agent's line is read out once, by the polite announcer; the log itself stays quiet (no
    # second reading), and the visitor does not hear their own line back
    await expect(chat.announcer).to_have_attribute("aria-live", "polite")
    await expect(chat.announcer).to_contain_text("Alice: Hello Kai, see https://acme.example/docs")
    await expect(chat.log).to_have_attribute("aria-live", "off")
    await expect(chat.announcer).not_to_contain_text("Typed with the keyboard only")
    assert await axe_violations(visit, axe_source) == [], "the conversation"

    await chat.button("End chat").click()
    await expect(chat.panel.get_by_text("Conversation ended", exact=True)).to_be_focused()
    assert await axe_violations(visit, axe_source) == [], "the rating view"

    # the stars are one group of buttons: Tab reaches each, Space picks one (pressed), a later pick moves it
    await page.keyboard.press("Tab")
    await expect(chat.star("1 star")).to_be_focused()
    await page.keyboard.press("Space")
    await expect(chat.star("1 star")).to_have_attribute("aria-pressed", "true")
    await page.keyboard.press("Tab")
    await expect(chat.star("2 stars")).to_be_focused()
    await page.keyboard.press("Space")
    await expect(chat.star("2 stars")).to_have_attribute("aria-pressed", "true")
    await expect(chat.star("1 star")).to_have_attribute("aria-pressed", "false")


async def test_the_page_api(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat, page = visit.widget, visit.page
    await page.wait_for_function("() => window.Sitechat && window.Sitechat.v")
    await page.evaluate(
        """() => {
            window.__events = [];
            for (const e of ["open", "close", "message"])
                Sitechat.on(e, m => window.__events.push(
                    e === "message" ? {e, role: m.author.role, name: m.author.name, text: m.text} : {e}));
        }"""
    )
    await page.evaluate("() => Sitechat.open()")
    await expect(chat.panel).to_be_visible()
    await expect(chat.close_launcher).to_be_visible()
    await page.evaluate("() => Sitechat.close()")
    await expect(chat.panel).to_be_hidden()
    await expect(chat.launcher).to_be_visible()
    await page.evaluate("() => Sitechat.open()")

    await chat.start_chat("Lena", "lena@example.com")
    await chat.say("Hello from Lena")
    root = await thread_root(fake_slack, "C0SUPPORT", "Lena")
    await agent.reply("C0SUPPORT", root["ts"], "Hi Lena!")
    await page.wait_for_function(
        "() => window.__events.some(x => x.e === 'message' && x.role === 'agent' && x.text === 'Hi Lena!')"
    )
    events = await page.evaluate("() => window.__events")
    assert events[:3] == [{"e": "open"}, {"e": "close"}, {"e": "open"}], events
    agent_messages = [x for x in events if x["e"] == "message" and x["role"] == "agent"]
    assert agent_messages == [{"e": "message", "role": "agent", "name": "Alice", "text": "Hi Lena!"}]

    # an agent message while the panel is closed: an unread badge on the launcher, announced politely
    await page.evaluate("() => Sitechat.close()")
    await agent.reply("C0SUPPORT", root["ts"], "Anything else?")
    await expect(page.get_by_text("1 new message", exact=True)).to_be_attached()
    await expect(chat.host.locator(".bd")).to_have_text("1")
    await page.wait_for_function(
        "() => window.__events.filter(x => x.e === 'message' && x.role === 'agent').length == 2"
    )


IDENTIFY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer area</title></head>
<body><main><h1>Your orders</h1><p>A page on another origin that embeds the chat.</p></main>
<script>
  window.Sitechat = window.Sitechat || {q: []};
  ["open", "close", "identify", "on"].forEach(function (m) {
    Sitechat[m] = Sitechat[m] || function () { Sitechat.q.push([m].concat([].slice.call(arguments))) };
  });
  var p = new URLSearchParams(location.search);
  Sitechat.identify({id: p.get("id"), name: p.get("name"), email: p.get("email"), hash: p.get("hash")});
</script>
<script src="{BRIDGE}/widget.js" data-site="acme" async></script>
</body></html>"""


async def test_identify_on_another_origin(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    embedding_site: EmbeddingSite,
    browse: Browse,
) -> None:
    bridge = await make_bridge(fake_slack, site={"origins": [embedding_site.origin], "identity_secret": "s3cret"})
    embedding_site.bridge_url, embedding_site.body = bridge.url, IDENTIFY_PAGE
    agent = make_agent(bridge)
    good = hmac.new(b"s3cret", b"cust-42", hashlib.sha256).hexdigest()

    async def chat_as(name: str, email: str, customer_id: str, hash_: str) -> dict[str, Any]:
        query = urlencode({"id": customer_id, "name": name, "email": email, "hash": hash_})
        visit = await browse(f"{embedding_site.origin}/?{query}")
        chat = visit.widget
        await chat.open()
        await expect(chat.textbox("Name")).to_have_value(name)  # identify() prefilled the form
        await expect(chat.textbox("Email")).to_have_value(email)
        await chat.button("Start chat").click()
        await chat.say(f"Hi, this is {name}")
        root = await thread_root(fake_slack, "C0SUPPORT", name)
        await fake_slack.wait_for(lambda: fake_slack.replies("C0SUPPORT", root["ts"]), message=f"{name}'s line")
        # the cross-origin socket works both ways
        await agent.reply("C0SUPPORT", root["ts"], f"Hello {name}")
        await expect(chat.line(f"Hello {name}")).to_be_visible()
        return root

    verified = await chat_as("Vera", "vera@example.com", "cust-42", good)
    assert "customer id cust-42" in json.dumps(verified["blocks"])
    forged = await chat_as("Mallory", "mallory@example.com", "cust-42", "0" * 64)
    assert "customer id" not in json.dumps(forged["blocks"])


async def test_an_origin_the_site_does_not_allow_gets_no_widget(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, embedding_site: EmbeddingSite, browse: Browse
) -> None:
    bridge = await make_bridge(fake_slack)  # origins: https://acme.example only
    embedding_site.bridge_url, embedding_site.body = bridge.url, IDENTIFY_PAGE
    visit = await browse("about:blank")
    async with visit.page.expect_console_message(lambda m: "sitechat: site unavailable" in m.text):
        await visit.page.goto(embedding_site.origin + "/?id=x&name=Zed")
    await expect(visit.widget.host).to_have_count(0)
    await expect(visit.widget.launcher).to_have_count(0)
    assert not root_of(fake_slack, "C0SUPPORT", "Zed")


SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><main><h1>Shop</h1><p>Another origin's page with the one-line embed.</p></main>
<script src="{BRIDGE}/widget.js" data-site="acme" async></script>
</body></html>"""


async def test_a_page_opened_while_the_server_is_down_gets_the_chat_when_it_is_back(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, embedding_site: EmbeddingSite, browse: Browse
) -> None:
    bridge = await make_bridge(fake_slack, site={"origins": [embedding_site.origin]})
    embedding_site.bridge_url, embedding_site.body = bridge.url, SHOP_PAGE
    visit = await browse(embedding_site.origin + "/")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Nina", "nina@example.com")
    await chat.say("Before the outage")
    root = await thread_root(fake_slack, "C0SUPPORT", "Nina")
    await fake_slack.wait_for(lambda: fake_slack.replies("C0SUPPORT", root["ts"]), message="Nina's first line")

    # the visitor leaves, the server goes down, the visitor opens another page of the shop; widget.js
    # comes from the browser's cache, the server does not answer yet
    await visit.page.goto("about:blank")
    await bridge.stop()
    await visit.page.goto(embedding_site.origin + "/orders")
    await visit.page.wait_for_function("() => window.Sitechat && window.Sitechat.v")
    await bridge.start()

    await expect(chat.launcher).to_be_visible(timeout=15_000)
    await chat.open()
    await expect(chat.line("Before the outage")).to_be_visible()
    await chat.say("After the outage")
    await fake_slack.wait_for(
        lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if m["text"] == "After the outage"],
        message="the line sent after the outage, in the same thread",
    )


async def test_on_a_phone_the_panel_fills_the_screen(slack_bridge: RunningBridge, browse: Browse) -> None:
    visit = await browse(
        slack_bridge.url + "/demo", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    chat = visit.widget
    await chat.launcher.tap()
    await expect(chat.panel).to_be_visible()
    await chat.panel.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # it slides in
    box = await chat.panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}, box
    await expect(chat.close_launcher).to_be_hidden()  # the panel covers it; "Minimise chat" closes
    await chat.textbox("Name").fill("Pia")
    await chat.button("Minimise chat").tap()
    await expect(chat.panel).to_be_hidden()
    await expect(chat.launcher).to_be_focused()
    await chat.launcher.tap()
    await expect(chat.textbox("Name")).to_have_value("Pia")


async def test_the_agent_sees_the_page_the_visitor_moves_to(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Quinn", "quinn@example.com")
    root = await thread_root(fake_slack, "C0SUPPORT", "Quinn")
    assert "/demo" in json.dumps(root["blocks"])
    await visit.page.evaluate(
        "() => { document.title = 'Folding Mini'; history.pushState({}, '', '/demo/folding-mini') }"
    )
    await fake_slack.wait_for(
        lambda: "/demo/folding-mini" in json.dumps(fake_slack.message("C0SUPPORT", root["ts"])["blocks"]),
        message="the root showing the visitor's new page",
    )
    blocks = json.dumps(fake_slack.message("C0SUPPORT", root["ts"])["blocks"])
    assert "Folding Mini" in blocks and "Pages seen" in blocks
