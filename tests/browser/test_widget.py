"""The widget in a real browser against the real server: a visitor's whole conversation with Slack.

Everything is found by role and name (the way a screen reader sees the widget); every wait is
Playwright's auto-waiting ``expect`` or the fake Slack's ``wait_for`` — no fixed sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import BridgeFactory, Browse, Widget, thread_root
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, root_of

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

Screenshot = Callable[[Page, str], Awaitable[Path]]
#: the site as the screenshots in docs/ show it
BIKES = {"name": "Acme Bikes", "greeting": "Hi! We usually answer within a minute."}


def visitor_lines(slack: FakeSlack, channel: str, root: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The thread's replies that relay ``text`` (as Slack stores it) from the visitor."""
    return [m for m in slack.replies(channel, root["ts"]) if m.get("text") == text]


async def expect_joined_before(chat: Widget, first_line: str, name: str = "Alice") -> None:
    """The team member's face (CONTRACT §8): "Alice joined the chat" once, as a notice, right before the
    first line they wrote."""
    await expect(chat.log.locator(".m.system")).to_have_text([f"{name} joined the chat"])
    await expect(chat.log.locator(".m.system + .m.agent")).to_contain_text(first_line)


async def test_visitor_and_agent_talk_through_the_widget(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    browse: Browse,
    screenshot: Screenshot,
) -> None:
    bridge = await make_bridge(fake_slack, site=BIKES)
    agent = make_agent(bridge)
    visit = await browse(bridge.url + "/demo")
    chat = visit.widget
    await expect(chat.launcher).to_be_visible()
    await expect(chat.panel).to_be_hidden()
    await screenshot(visit.page, "widget-closed")

    await chat.open()
    await expect(chat.panel).to_have_accessible_name("Chat with Acme Bikes")
    await expect(chat.panel).to_contain_text("Hi! We usually answer within a minute.")
    await chat.start_chat("Ann Lee", "ann@example.com", topic="Sales")
    await chat.say("Does the Tourer XL come with a rack & mudguards?")
    await expect(chat.line("Does the Tourer XL come with a rack & mudguards?")).to_be_visible()

    # the topic routes the thread to its own channel; the line is posted with the visitor's name
    root = await thread_root(fake_slack, "C0SALES", "Ann Lee")
    assert root_of(fake_slack, "C0SUPPORT", "Ann Lee") is None
    assert "ann@example.com" in json.dumps(root["blocks"]) and "Sales" in json.dumps(root["blocks"])
    [line] = await fake_slack.wait_for(
        lambda: visitor_lines(fake_slack, "C0SALES", root, "Does the Tourer XL come with a rack &amp; mudguards?"),
        message="the visitor's line in the thread",
    )
    assert line["username"] == "Ann Lee"
    await expect(chat.log).not_to_contain_text("Sending…")

    status, _ = await agent.reply(
        "C0SALES",
        root["ts"],
        "Hi Ann! Yes, a steel rack rated for 25 kg. Details: <https://acme.example/bikes/tourer-xl>",
    )
    assert status == 200
    answer = "Hi Ann! Yes, a steel rack rated for 25 kg. Details: https://acme.example/bikes/tourer-xl"
    reply = chat.log.locator(".m", has_text=answer)
    await expect(reply).to_be_visible()
    await expect(reply).to_contain_text("Alice")
    await expect(reply.get_by_role("link", name="https://acme.example/bikes/tourer-xl")).to_be_visible()
    await expect(chat.line(answer)).to_have_count(1)
    await expect_joined_before(chat, answer)

    await chat.message_box.fill("Great, and can I pick it up in Berlin?")
    await screenshot(visit.page, "widget-open")
    await chat.message_box.press("Enter")
    await fake_slack.wait_for(
        lambda: visitor_lines(fake_slack, "C0SALES", root, "Great, and can I pick it up in Berlin?"),
        message="the second line",
    )
    await expect(chat.log.locator(".m")).to_have_count(4)  # two lines each, and Alice joining


async def test_shift_enter_adds_a_line_and_enter_sends_once(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Ben", "ben@example.com")
    await chat.message_box.type("first line")
    await chat.message_box.press("Shift+Enter")
    await chat.message_box.type("second line")
    await expect(chat.message_box).to_have_value("first line\nsecond line")
    await expect(chat.log.locator(".m")).to_have_count(0)  # nothing sent yet
    await chat.message_box.press("Enter")
    await expect(chat.message_box).to_have_value("")

    root = await thread_root(fake_slack, "C0SUPPORT", "Ben")
    await fake_slack.wait_for(
        lambda: visitor_lines(fake_slack, "C0SUPPORT", root, "first line\nsecond line"), message="the two-line message"
    )
    await slack_bridge.wait_idle()
    assert [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])] == ["first line\nsecond line"]
    await expect(chat.log.locator(".m")).to_have_count(1)
    await expect(chat.log.locator(".m")).to_contain_text("first line\nsecond line")


async def test_a_reload_keeps_the_conversation(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Cleo", "cleo@example.com")
    await chat.say("Hello from before the reload")
    root = await thread_root(fake_slack, "C0SUPPORT", "Cleo")
    await fake_slack.wait_for(lambda: visitor_lines(fake_slack, "C0SUPPORT", root, "Hello from before the reload"))
    await agent.reply("C0SUPPORT", root["ts"], "Hi Cleo, Alice here")
    await expect(chat.line("Hi Cleo, Alice here")).to_be_visible()

    await visit.page.reload()
    await chat.open()
    await expect(chat.line("Hello from before the reload")).to_have_count(1)
    await expect(chat.line("Hi Cleo, Alice here")).to_have_count(1)
    await expect_joined_before(chat, "Hi Cleo, Alice here")  # replayed in its place
    await expect(chat.message_box).to_be_focused()  # straight back into the conversation, no pre-chat form
    await expect(chat.textbox("Name")).to_have_count(0)

    await chat.say("And after it")
    await fake_slack.wait_for(lambda: visitor_lines(fake_slack, "C0SUPPORT", root, "And after it"))
    roots = [m for m in fake_slack.messages("C0SUPPORT") if m.get("thread_ts") in (None, m["ts"])]
    assert len(roots) == 1, "the reload started a second conversation"
    await agent.reply("C0SUPPORT", root["ts"], "Still here")
    await expect(chat.line("Still here")).to_be_visible()
    await expect(chat.log.locator(".m")).to_have_count(5)  # four lines, and Alice joining once
    await expect_joined_before(chat, "Hi Cleo, Alice here")


async def test_the_widget_rides_out_a_server_restart(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    browse: Browse,
) -> None:
    bridge = await make_bridge(fake_slack)
    agent = make_agent(bridge)
    visit = await browse(bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Dora", "dora@example.com")
    await chat.say("Before the restart")
    root = await thread_root(fake_slack, "C0SUPPORT", "Dora")
    await fake_slack.wait_for(lambda: visitor_lines(fake_slack, "C0SUPPORT", root, "Before the restart"))
    await expect(chat.line("Before the restart")).to_be_visible()

    await bridge.stop()
    reconnecting = chat.page.get_by_role("status").filter(has_text="Reconnecting…")
    await expect(reconnecting).to_be_visible()
    await chat.say("Typed while you were down")
    await expect(chat.log.locator(".m", has_text="Typed while you were down")).to_contain_text("Sending…")
    await bridge.start()

    await expect(reconnecting).to_be_hidden(timeout=15_000)
    await fake_slack.wait_for(
        lambda: visitor_lines(fake_slack, "C0SUPPORT", root, "Typed while you were down"),
        timeout=15,
        message="the message typed during the outage",
    )
    await expect(chat.log).not_to_contain_text("Sending…")
    await agent.reply("C0SUPPORT", root["ts"], "Back after the restart")
    await expect(chat.line("Back after the restart")).to_be_visible()

    await bridge.wait_idle()
    texts = [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])]
    assert texts.count("Typed while you were down") == 1, texts
    assert texts.count("Before the restart") == 1, texts
    for text in ("Before the restart", "Typed while you were down", "Back after the restart"):
        await expect(chat.line(text)).to_have_count(1)
    await expect(chat.log.locator(".m")).to_have_count(4)  # three lines, and Alice joining
    await expect_joined_before(chat, "Back after the restart")


async def test_ending_the_chat_and_rating_it(
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    make_agent: Callable[[RunningBridge], SlackAgent],
    browse: Browse,
    screenshot: Screenshot,
) -> None:
    bridge = await make_bridge(fake_slack, site=BIKES)
    agent = make_agent(bridge)
    visit = await browse(bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Eve", "eve@example.com")
    await chat.say("Can I return a bike?")
    root = await thread_root(fake_slack, "C0SUPPORT", "Eve")
    await agent.reply("C0SUPPORT", root["ts"], "Yes, within 30 days, free of charge.")
    await expect(chat.line("Yes, within 30 days, free of charge.")).to_be_visible()

    await chat.button("End chat").click()
    await expect(chat.panel.get_by_text("Conversation ended", exact=True)).to_be_visible()
    await expect(chat.message_box).to_be_hidden()
    await expect(chat.button("End chat")).to_be_hidden()
    await expect(chat.rating).to_be_visible()
    for name in ("1 star", "2 stars", "3 stars", "4 stars", "5 stars"):
        await expect(chat.star(name)).to_be_visible()
        await expect(chat.star(name)).to_have_attribute("aria-pressed", "false")
    for name in ("Send rating", "Email transcript", "New chat"):
        await expect(chat.button(name)).to_be_visible()
    await expect(chat.textbox("Email for transcript")).to_have_value("eve@example.com")

    await chat.star("4 stars").click()
    await expect(chat.star("4 stars")).to_have_attribute("aria-pressed", "true")
    for name in ("1 star", "2 stars", "3 stars", "5 stars"):
        await expect(chat.star(name)).to_have_attribute("aria-pressed", "false")
    await chat.textbox("Comment").fill("Quick and friendly")
    await screenshot(visit.page, "widget-rating")
    await chat.button("Send rating").click()
    await expect(chat.panel.get_by_text("Thank you for your feedback!")).to_be_visible()
    await expect(chat.button("Send rating")).to_be_hidden()

    await fake_slack.wait_for(
        lambda: [
            m
            for m in fake_slack.replies("C0SUPPORT", root["ts"])
            if "4/5" in m["text"] and "Quick and friendly" in m["text"]
        ],
        message="the rating and its comment in the thread",
    )
    transcript = [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "Transcript" in m["text"]]
    assert len(transcript) == 1 and "Can I return a bike?" in transcript[0]["text"]

    # no mail server here: asking for the transcript says so, in words
    await chat.button("Email transcript").click()
    await expect(chat.panel.get_by_text("email is not set up", exact=False)).to_be_visible()

    # a new chat starts from the pre-chat form, and is a new thread
    await chat.button("New chat").click()
    await expect(chat.button("Start chat")).to_be_visible()
    await expect(chat.log).to_be_hidden()
    await chat.start_chat("Eve", "eve@example.com")
    await chat.say("One more question")
    await fake_slack.wait_for(
        lambda: len([m for m in fake_slack.messages("C0SUPPORT") if m.get("thread_ts") in (None, m["ts"])]) == 2,
        message="a second thread for the new chat",
    )
    await expect(chat.log.locator(".m")).to_have_count(1)


async def test_the_agent_closes_the_chat_and_the_visitor_rates_it(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Finn", "finn@example.com")
    await chat.say("That's all, thanks")
    root = await thread_root(fake_slack, "C0SUPPORT", "Finn")
    await agent.reply("C0SUPPORT", root["ts"], "!close")

    await expect(chat.panel.get_by_text("Conversation ended", exact=True)).to_be_visible()
    await expect(chat.message_box).to_be_hidden()
    await expect(chat.log.get_by_text("!close")).to_have_count(0)
    await chat.button("Send rating").click()
    await expect(chat.panel.get_by_role("alert").filter(has_text="Please choose a rating first.")).to_be_visible()
    await chat.star("5 stars").click()
    await chat.button("Send rating").click()
    await expect(chat.panel.get_by_text("Thank you for your feedback!")).to_be_visible()
    await fake_slack.wait_for(
        lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "5/5" in m["text"]],
        message="the rating in the thread",
    )

    # the rating is remembered: a reload does not ask again
    await visit.page.reload()
    await chat.open()
    await expect(chat.panel.get_by_text("Conversation ended", exact=True)).to_be_visible()
    await expect(chat.panel.get_by_text("Thank you for your feedback!")).to_be_visible()
    await expect(chat.button("Send rating")).to_be_hidden()


async def test_agent_text_is_shown_as_text_and_only_web_links_are_links(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Gus", "gus@example.com")
    await chat.say("<img src=x onerror=\"window.__pwned='visitor'\">")
    root = await thread_root(fake_slack, "C0SUPPORT", "Gus")

    # What Slack sends for an agent who typed these (Slack escapes & < > and wraps URLs in <…>)
    payload = (
        '&lt;img src=x onerror=alert(1)&gt; &lt;img src=x onerror="window.__pwned=1"&gt; '
        "&lt;script&gt;alert(2)&lt;/script&gt; javascript:alert(3) "
        "<javascript:alert(4)|click me> see <https://acme.example/docs>"
    )
    await agent.reply("C0SUPPORT", root["ts"], payload)
    shown = (
        '<img src=x onerror=alert(1)> <img src=x onerror="window.__pwned=1"> '
        # a link that is no web link is just its label (CONTRACT §7)
        "<script>alert(2)</script> javascript:alert(3) click me see https://acme.example/docs"
    )
    await expect(chat.line(shown)).to_be_visible()
    await expect(chat.line("<img src=x onerror=\"window.__pwned='visitor'\">")).to_be_visible()

    await expect(chat.log.locator("script")).to_have_count(0)
    await expect(chat.log.locator('img[src="x"]')).to_have_count(0)
    links = chat.log.get_by_role("link")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://acme.example/docs")
    await expect(links).to_have_attribute("target", "_blank")
    assert "noopener" in (await links.get_attribute("rel") or "")
    await expect(chat.log.locator('a[href^="javascript"]')).to_have_count(0)

    # any image that failed to load has had its chance to run its handler by now
    await visit.page.wait_for_load_state("load")
    assert await visit.page.evaluate("() => typeof window.__pwned") == "undefined"
    assert visit.dialogs == []


async def test_two_tabs_show_the_same_conversation(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    first = await browse(slack_bridge.url + "/demo")
    await first.widget.open()
    await first.widget.start_chat("Rita", "rita@example.com")
    await first.widget.say("From the first tab")
    root = await thread_root(fake_slack, "C0SUPPORT", "Rita")

    second = await browse(slack_bridge.url + "/demo", tab_of=first)
    await second.widget.open()
    await expect(second.widget.line("From the first tab")).to_be_visible()
    await second.widget.say("From the second tab")
    await expect(first.widget.line("From the second tab")).to_be_visible()
    await agent.reply("C0SUPPORT", root["ts"], "Hello Rita")
    for tab in (first, second):
        await expect(tab.widget.line("Hello Rita")).to_be_visible()
        await expect(tab.widget.log.locator(".m")).to_have_count(4)  # three lines, and Alice joining
        await expect_joined_before(tab.widget, "Hello Rita")

    await slack_bridge.wait_idle()
    texts = [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])]
    assert texts == ["From the first tab", "From the second tab"], texts

    # a reload of either tab still shows it all, once
    await first.page.reload()
    await first.widget.open()
    await expect(first.widget.log.locator(".m")).to_have_count(4)
    await expect_joined_before(first.widget, "Hello Rita")
