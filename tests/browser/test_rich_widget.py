"""Rich messages in a real browser (CONTRACT §7): an agent's formatting shows as bold, lists and links,
hostile HTML stays inert even if it reached the page, what the visitor sees gets the bot's 👀 in Slack,
and "Seen" shows under the visitor's message the team has read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import WebSocketRoute, expect

from tests.browser.conftest import Browse, thread_root
from tests.e2e.test_slack_rich import RICH, RICH_TEXT
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

HOSTILE = (
    '<p onclick="window.__pwned=1" style="position:fixed;inset:0">styled</p>'
    '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3">'
    '<iframe src="javascript:window.__pwned=4"></iframe><svg onload="window.__pwned=5"><a href="https://in.svg">s</a></svg>'
    '<a href="javascript:window.__pwned=6">js link</a> <a href="/relative">relative</a> '
    '<a href="https://ok.example/" target="_self" onclick="window.__pwned=7">ok link</a>'
    '<template><img src=x onerror="window.__pwned=8"></template><form><button>b</button></form>'
    "<strong>still bold</strong>"
)


async def test_formatted_agent_text_shows_and_what_is_seen_gets_the_bots_eyes(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    visit = await browse(slack_bridge.url + "/demo")
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Rita", "rita@example.com")
    await chat.say("*is this bold?* <b>no</b>")
    root = await thread_root(fake_slack, "C0SUPPORT", "Rita")

    typed = fake_slack.add_message("C0SUPPORT", "UAGENT", RICH_TEXT, thread_ts=root["ts"], blocks=RICH)
    event = message_event("C0SUPPORT", "UAGENT", RICH_TEXT, ts=typed["ts"], thread_ts=root["ts"], blocks=RICH)
    status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
    assert status == 200

    reply = chat.log.locator(".m.agent", has_text="Order")
    await expect(reply.locator("strong")).to_have_text("Order")
    await expect(reply.locator("ul > li")).to_have_count(2)
    await expect(reply.locator("li em")).to_have_text("one")
    await expect(reply.locator("li code")).to_have_text("a*b*c")
    await expect(reply.locator("blockquote")).to_have_text("<script>alert(1)</script> &amp;")
    await expect(reply.locator("pre")).to_have_text("x = <y>")
    link = reply.get_by_role("link", name="tracking")
    await expect(link).to_have_attribute("href", "https://track.example/?id=1&x=2")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    # the visitor's own text is never formatted
    await expect(chat.line("*is this bold?* <b>no</b>")).to_be_visible()
    await expect(chat.log.locator(".m.visitor strong, .m.visitor b")).to_have_count(0)

    # on screen, in a visible and focused page: the team sees the bot's 👀 on the agent's reply
    def eyes() -> list[str]:
        reactions = fake_slack.message("C0SUPPORT", typed["ts"]).get("reactions", [])
        return [u for r in reactions if r["name"] == "eyes" for u in r["users"]]

    await visit.page.bring_to_front()
    await fake_slack.wait_for(eyes, message="the bot's 👀 on the agent's reply")
    assert eyes() == [fake_slack.bot_user_id]


async def test_hostile_html_is_inert_and_seen_shows_under_the_visitors_message(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, agent: SlackAgent, browse: Browse
) -> None:
    """The server only ever sends the sanitized subset; should anything else reach the widget, it builds
    nothing from it but the allowed tags. The socket is passed through a route that swaps an agent
    message's ``html`` for hostile markup (and says the team read the visitor's line)."""
    said: dict[str, Any] = {}

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))

        def from_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "message" and frame["message"]["author"]["role"] == "agent":
                frame["message"]["html"] = HOSTILE
                ws.send(json.dumps(frame))
                ws.send(json.dumps({"type": "read", "seq": said["seq"]}))
                return
            ws.send(message)

        server.on_message(from_server)

    visit = await browse(slack_bridge.url + "/demo")
    await visit.page.route_web_socket("**/ws", route)
    chat = visit.widget
    await chat.open()
    await chat.start_chat("Hal", "hal@example.com")
    await chat.say("first line")
    await chat.say("second line")
    root = await thread_root(fake_slack, "C0SUPPORT", "Hal")
    visitor_lines = chat.log.locator(".m.visitor")
    await expect(visitor_lines).to_have_count(2)
    # a line the server has not confirmed yet has no seq: wait for the one the team is said to read
    await expect(visitor_lines.first).to_have_attribute("data-seq", re.compile(r"^[1-9][0-9]*$"))
    said["seq"] = int(await visitor_lines.first.get_attribute("data-seq") or 0)
    await agent.reply("C0SUPPORT", root["ts"], "*plain* answer")

    reply = chat.log.locator(".m.agent", has_text="still bold")
    await expect(reply.locator("strong")).to_have_text("still bold")
    for selector in ("script", "img", "iframe", "svg", "form", "button", "template", "[onclick]", "[style]"):
        await expect(reply.locator(selector)).to_have_count(0)
    links = reply.get_by_role("link")
    await expect(links).to_have_count(1)
    await expect(links).to_have_text("ok link")
    await expect(links).to_have_attribute("href", "https://ok.example/")
    await expect(links).to_have_attribute("target", "_blank")
    await expect(reply).to_contain_text("js link")
    await expect(reply).to_contain_text("relative")
    await visit.page.wait_for_load_state("load")
    assert await visit.page.evaluate("() => typeof window.__pwned") == "undefined"

    # "Seen" under the visitor's line the team read (the first), and only there
    seen = chat.log.get_by_text("Seen")
    await expect(seen).to_have_count(1)
    await expect(visitor_lines.first).to_contain_text("Seen")
    await expect(visitor_lines.last).not_to_contain_text("Seen")
