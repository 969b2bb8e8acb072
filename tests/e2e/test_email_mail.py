"""The transcript mail itself: a plain and an HTML part, times in the visitor's zone, and one
Message-ID per delivery however often it is sent."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller

from adapters.email.endpoint import message_id
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import Inbox
from tests.harness import free_port, root_of, visitor_and_agent, wait_until


def test_a_resent_mail_keeps_its_message_id() -> None:
    first = message_id("c0nv-ID_1", 42, "help@acme.example")
    assert first == message_id("c0nv-ID_1", 42, "help@acme.example") == "<sitechat.c0nv-ID_1.42@acme.example>"
    assert first != message_id("c0nv-ID_1", 43, "help@acme.example")


async def test_the_mail_has_a_plain_and_an_html_part(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        bridge = await make_bridge(fake_slack, smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="help@acme.example")
        async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
            await visitor.start(name="Ann", timezone="Asia/Tokyo")
            root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
            await visitor.say("Is <b>5</b> < 6 & 7?")
            await agent.reply("C0SUPPORT", root["ts"], "Yes!")

            async def replies() -> int:
                return len((await visitor.messages())["messages"])

            await wait_until(lambda: _at_least(replies, 2), what="the reply")
            path = f"/api/v1/conversations/{visitor.conversation_id}/transcript"
            status, body, _ = await visitor.request("POST", path, {"email": "ann@example.com"})
            assert status == 202, body
            await wait_until(lambda: inbox.mails, what="the mail")
        mail = inbox.mails[0]
        assert mail["Message-ID"].startswith(f"<sitechat.{visitor.conversation_id}.")
        assert mail.is_multipart() and mail.get_content_type() == "multipart/alternative"
        parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.get_payload()}
        assert "Ann: Is <b>5</b> < 6 & 7?" in parts["text/plain"]
        html = parts["text/html"]
        assert "<strong>Alice</strong>: Yes!" in html
        assert "<strong>Ann</strong>: Is &lt;b&gt;5&lt;/b&gt; &lt; 6 &amp; 7?" in html, "what people type stays text"
        assert "Asia/Tokyo" in html
    finally:
        smtp.stop()


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
