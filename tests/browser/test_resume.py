"""The visitor has left (CONTRACT §8), in a real browser: a visitor chats on the demo page, gives an email
and closes the tab; Alice answers in the fake Slack; her reply, unseen, goes by mail to a real SMTP server
(aiosmtpd); the link in the mail, opened in another browser (a fresh context: another device), opens the
widget by itself on the earlier conversation, takes the ticket off the address, and the visitor goes on
with the chat. The link works once: opened again elsewhere it shows the normal widget and says so.

The timers' clock is moved by hand (``Skewed``): the follow-up's minutes pass without the test waiting them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import expect

from tests.browser.conftest import Browse, thread_root
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import Inbox
from tests.harness import ORIGIN, BridgeFactory, SlackAgent, free_port, timer_rounds, timer_rounds_past, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FOLLOW_UP_MINUTES = 5
#: what the widget keeps in a browser that is in another chat, with a line it could not send yet
STALE_OTHER_CHAT = """localStorage.setItem("sitechat:acme", JSON.stringify({
  visitor: {name: "Ann"}, id: "AnotherChatAnotherChat00", token: "stale", lastSeq: 0, status: "open",
  queue: [{client_msg_id: "stale-1", text: "Unsent line of another chat"}]}))"""


class Skewed:
    """The timers' clock, ``ahead`` of the wall clock."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def outbox() -> Iterator[Inbox]:
    """A real SMTP server (its own thread) keeping every mail the bridge sends."""
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    inbox.port = smtp.port  # type: ignore[attr-defined]
    try:
        yield inbox
    finally:
        smtp.stop()


def plain(mail: Message) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_the_mails_link_reopens_the_chat_in_another_browser_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, outbox: Inbox, browse: Browse
) -> None:
    # the demo page is on the bridge's own origin: the site lists it, so the mail links the page itself
    port = free_port()
    demo = f"http://127.0.0.1:{port}/demo"
    bridge = await make_bridge(
        fake_slack,
        port=port,
        site={"origins": [ORIGIN, f"http://127.0.0.1:{port}"]},
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",  # type: ignore[attr-defined]
        mail_from="help@acme.example",
        follow_up_minutes=FOLLOW_UP_MINUTES,
        first_response_alert_seconds=2,  # the timers' pace
        reminder_max=0,  # the clock jumps: no reminders in the thread
    )
    assert bridge.runtime is not None
    clock = Skewed()
    bridge.runtime.timers.clock = clock
    began = timer_rounds(bridge)
    agent = SlackAgent(bridge.url, fake_slack)
    try:
        visit = await browse(demo)
        await visit.widget.open()
        await visit.widget.start_chat("Ann", "ann@example.com")
        await visit.widget.say("Where is my order?")
        root = await thread_root(fake_slack, "C0SUPPORT", "Ann")
        await fake_slack.wait_for(
            lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if m["text"] == "Where is my order?"],
            message="the question in the thread",
        )
        await visit.page.close()  # the visitor has left

        assert (await agent.reply("C0SUPPORT", root["ts"], "It left our warehouse today."))[0] == 200
        await bridge.wait_idle()
        clock.ahead += timedelta(minutes=FOLLOW_UP_MINUTES + 1)
        await timer_rounds_past(began, clock(), "the follow-up's minutes")
        await wait_until(lambda: outbox.mails, what="the follow-up mail")
        [mail] = outbox.mails
        assert mail["To"] == "ann@example.com"
        found = re.search(r"Continue the chat: (\S+)", plain(mail))
        assert found is not None, plain(mail)
        link = found.group(1)
        assert link.startswith(demo + "#sitechat-resume="), link

        # another device: the widget opens by itself on the conversation, the ticket gone from the address
        there = await browse(link)
        chat = there.widget
        await expect(chat.panel).to_be_visible()
        await expect(chat.close_launcher).to_have_attribute("aria-expanded", "true")
        await expect(chat.line("Where is my order?")).to_be_visible()
        await expect(chat.line("It left our warehouse today.")).to_be_visible()
        await expect(chat.message_box).to_be_focused()
        assert there.page.url == demo
        assert await there.page.evaluate("() => location.hash") == ""
        await chat.say("Great, thanks! Can I change the address?")
        await fake_slack.wait_for(
            lambda: [
                m
                for m in fake_slack.replies("C0SUPPORT", root["ts"])
                if m["text"] == "Great, thanks! Can I change the address?" and m.get("username") == "Ann"
            ],
            message="the resumed visitor's line in the thread",
        )
        await expect(chat.log.locator(".m.visitor")).to_have_count(2)

        # the same link again, on yet another device: no chat for whoever has the mail now — the normal
        # widget, open, saying why
        again = await browse(link)
        await expect(again.widget.panel).to_be_visible()
        await expect(again.widget.panel).to_contain_text("This link has expired or was used already.")
        await expect(again.widget.button("Start chat")).to_be_visible()
        await expect(again.widget.log).to_be_hidden()
        await expect(again.page.get_by_text("It left our warehouse today.")).to_have_count(0)
        assert again.page.url == demo

        # and in the browser that has the chat, the used link just opens it, with nothing to say
        tab = await browse(link, tab_of=there)
        await expect(tab.widget.panel).to_be_visible()
        await expect(tab.widget.line("Great, thanks! Can I change the address?")).to_be_visible()
        await expect(tab.widget.panel).not_to_contain_text("This link has expired")

        # the visitor was back, and leaves again: Alice's next reply is a new mail with a new link; a browser
        # that still holds another chat with a line unsent takes this chat and never sends that line into it
        await tab.page.close()
        await there.page.close()
        assert (await agent.reply("C0SUPPORT", root["ts"], "Sure, just send me the new one."))[0] == 200
        await bridge.wait_idle()
        clock.ahead += timedelta(minutes=FOLLOW_UP_MINUTES + 1)
        await timer_rounds_past(began, clock(), "the follow-up's minutes, again")
        await wait_until(lambda: len(outbox.mails) == 2, what="the second follow-up mail")
        second = re.search(r"Continue the chat: (\S+)", plain(outbox.mails[1]))
        assert second is not None and second.group(1) != link
        other_chat = await browse("about:blank")
        await other_chat.page.add_init_script(STALE_OTHER_CHAT)
        await other_chat.page.goto(second.group(1))
        await expect(other_chat.widget.line("Sure, just send me the new one.")).to_be_visible()
        await other_chat.widget.say("12 Main Street")
        await fake_slack.wait_for(
            lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if m["text"] == "12 Main Street"],
            message="the line from the browser that had another chat",
        )
        await bridge.wait_idle()
        assert "Unsent line of another chat" not in [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])]
        await expect(other_chat.widget.log).not_to_contain_text("Unsent line of another chat")
    finally:
        await agent.close()
