"""Transcripts by email, through a real SMTP server (aiosmtpd) in the test."""

from __future__ import annotations

import email
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import Visitor, free_port, root_of, visitor_and_agent, wait_until


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"


async def test_transcript_is_mailed(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        bridge = await make_bridge(fake_slack, smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="help@acme.example")
        async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
            await visitor.start(name="Ann")
            root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
            await visitor.say("Where is my order?")
            await agent.reply("C0SUPPORT", root["ts"], "On its way!")
            await agent.reply("C0SUPPORT", root["ts"], "// internal: order 123")
            await wait_until(lambda: _count(visitor, 2), what="the reply")
            await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
            status, body, _ = await visitor.request(
                "POST", f"/api/v1/conversations/{visitor.conversation_id}/transcript", {"email": "ann@example.com"}
            )
            assert status == 202, body
            status, body, _ = await visitor.request(
                "POST", f"/api/v1/conversations/{visitor.conversation_id}/transcript", {"email": "not an address"}
            )
            assert status == 422
            await wait_until(lambda: inbox.mails, what="the mail")
            mail = inbox.mails[0]
            assert mail["To"] == "ann@example.com" and mail["From"] == "help@acme.example"
            assert "Acme" in mail["Subject"]
            text = mail.get_payload(decode=True).decode()
            assert "Ann: Where is my order?" in text and "Alice: On its way!" in text
            assert "internal" not in text
    finally:
        smtp.stop()


async def _count(visitor: Visitor, n: int) -> bool:
    return len((await visitor.messages())["messages"]) >= n


async def test_without_smtp_the_transcript_request_says_so(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        status, body, _ = await visitor.request(
            "POST", f"/api/v1/conversations/{visitor.conversation_id}/transcript", {"email": "ann@example.com"}
        )
        assert status == 503 and body["error"]["code"] == "email_unavailable"
    finally:
        await visitor.close()
