"""The visitor has left (CONTRACT §8), end to end: a real SMTP server (aiosmtpd) takes the bridge's mail, a
real SMTP client writes to the bridge's own listener, Slack is the fake. An agent's reply the visitor has
not seen within SITECHAT_FOLLOW_UP_MINUTES goes to them once per wait, with a Reply-To of the
conversation's own and a link that resumes the chat; a reply to it lands in the thread as the visitor's,
stripped of the quote and signature; anyone else is refused; a reply the visitor saw is not mailed.

The timers' clock is moved by hand (``Skewed``): five minutes pass without the test waiting them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import Inbox
from tests.harness import (
    ORIGIN,
    RunningBridge,
    SlackAgent,
    Visitor,
    free_port,
    root_of,
    timer_rounds,
    timer_rounds_past,
    wait_until,
)

DOMAIN = "reply.acme.example"


class Skewed:
    """The timers' clock, ``ahead`` of the wall clock."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
async def outbox() -> AsyncIterator[Inbox]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    inbox.port = smtp.port  # type: ignore[attr-defined]
    try:
        yield inbox
    finally:
        smtp.stop()


async def follow_up_bridge(
    make_bridge: BridgeFactory, slack: FakeSlack, mail: Inbox, database_url: str | None = None
) -> tuple[RunningBridge, int, Skewed, list[datetime]]:
    """A bridge that mails through ``mail`` and listens for replies (on the port returned), its timers on a
    clock the test moves (and their rounds, to wait for); reminders off (the clock jumps), timers running
    often (a short alert time sets their pace)."""
    listen = free_port()
    bridge = await make_bridge(
        slack,
        database_url=database_url,
        smtp_url=f"smtp://127.0.0.1:{mail.port}",  # type: ignore[attr-defined]
        mail_from="help@acme.example",
        inbound_smtp=f"127.0.0.1:{listen}",
        inbound_domain=DOMAIN,
        first_response_alert_seconds=2,
        reminder_max=0,
    )
    assert bridge.runtime is not None
    clock = Skewed()
    bridge.runtime.timers.clock = clock
    return bridge, listen, clock, timer_rounds(bridge)


def plain(mail: Message) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode().replace("\r\n", "\n")


async def five_minutes_pass(bridge: RunningBridge, clock: Skewed, began: list[datetime], minutes: float = 6) -> None:
    clock.ahead += timedelta(minutes=minutes)
    await timer_rounds_past(began, clock(), f"{minutes} minutes later")


async def agent_line(agent: SlackAgent, root: dict[str, Any], visitor: Visitor, text: str) -> int:
    """Alice answers in the thread; the seq of her line once the visitor's side has it."""
    assert (await agent.reply("C0SUPPORT", root["ts"], text))[0] == 200

    async def stored() -> int | None:
        found = [m["seq"] for m in (await visitor.messages())["messages"] if m["text"] == text]
        return found[0] if found else None

    return int(await wait_until(stored, what=f"the reply {text!r}"))


async def reply_by_mail(port: int, sender: str, to: str, body: str) -> None:
    mail = EmailMessage()
    mail["From"] = f"Ann <{sender}>"
    mail["To"] = to
    mail["Subject"] = "Re: New reply from Acme"
    mail["Message-ID"] = f"<{sender.replace('@', '.')}.{len(body)}@mail.example>"
    mail.set_content(body)
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, timeout=10)


async def test_an_unseen_reply_is_mailed_once_and_the_answer_lands_in_the_thread(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, outbox: Inbox
) -> None:
    bridge, listen, clock, began = await follow_up_bridge(make_bridge, fake_slack, outbox)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann", email="Ann@Example.com")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the root")
        await visitor.say("Where is my order?")
        await agent_line(agent, root, visitor, "It left our warehouse today.")
        await agent_line(agent, root, visitor, "Which colour did you pick?")
        await five_minutes_pass(bridge, clock, began)
        await wait_until(lambda: outbox.mails, what="the follow-up mail")
        await agent_line(agent, root, visitor, "Are you still there?")  # the same wait: no second mail
        await five_minutes_pass(bridge, clock, began)
        await bridge.wait_idle()
        assert len(outbox.mails) == 1

        mail = outbox.mails[0]
        assert mail["To"] == "Ann@example.com" and mail["From"] == "help@acme.example"
        assert mail["Subject"] == "New reply from Acme"
        reply_to = "".join(str(mail["Reply-To"]).split())  # unfolded
        assert re.fullmatch(r"c-[a-z2-7]+\.[a-z2-7]{16}@" + re.escape(DOMAIN), reply_to), reply_to
        text = plain(mail)
        assert "Alice: It left our warehouse today.\nAlice: Which colour did you pick?" in text
        assert "Are you still there?" not in text and visitor.token not in text
        assert re.search(r"Continue the chat: https://acme\.example/pricing#sitechat-resume=\S+", text), text

        # the chat closed meanwhile (the visitor left); their answer to the mail opens it again, stripped of
        # the quote and signature, and theirs in the thread
        status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
        assert status == 200
        await reply_by_mail(
            listen,
            "ann@example.com",  # case aside, the address they gave
            reply_to,
            "Blue, please.\n\nOn Mon, Jan 6, 2025 at 10:00 AM Acme <" + reply_to + "> wrote:\n> Which colour?\n\n"
            "-- \nAnn Example",
        )

        def relayed() -> list[dict[str, Any]]:
            return [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "Blue" in m["text"]]

        posted = await fake_slack.wait_for(relayed, message="the mailed answer in the thread")
        assert posted[0]["text"] == "Blue, please." and posted[0].get("username", "").startswith("Ann")
        seen = await visitor.messages()
        mine = [m for m in seen["messages"] if m["author"]["role"] == "visitor"]
        assert [m["text"] for m in mine] == ["Where is my order?", "Blue, please."] and seen["status"] == "open"
        assert any("wrote back by email" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"]))

        # the visitor is back (they wrote): the next unseen reply is a new wait, and mailed again
        await agent_line(agent, root, visitor, "Blue it is!")
        await five_minutes_pass(bridge, clock, began)
        await wait_until(lambda: len(outbox.mails) == 2, what="the second wait's mail")
        second = plain(outbox.mails[1])
        assert "Alice: Blue it is!" in second and "Are you still there?" in second  # unseen since the last mail
        assert "warehouse" not in second
    finally:
        await visitor.close()
        await agent.close()


async def test_mail_from_anyone_else_or_to_a_made_up_address_is_refused(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, outbox: Inbox
) -> None:
    bridge, listen, clock, began = await follow_up_bridge(make_bridge, fake_slack, outbox)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the root")
        await agent_line(agent, root, visitor, "Hello Ann!")
        await five_minutes_pass(bridge, clock, began)
        await wait_until(lambda: outbox.mails, what="the follow-up mail")
        reply_to = "".join(str(outbox.mails[0]["Reply-To"]).split())
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await reply_by_mail(listen, "mallory@example.net", reply_to, "Give me the order details")
        assert [r.code for r in refused.value.recipients] == [550]
        forged = reply_to.replace(reply_to.split("@")[0][-4:], "aaaa")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await reply_by_mail(listen, "ann@example.com", forged, "Hi")
        assert [r.code for r in refused.value.recipients] == [550]
        await bridge.wait_idle()
        texts = [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])]
        assert not any("order details" in t or t == "Hi" for t in texts), texts
    finally:
        await visitor.close()
        await agent.close()


async def test_a_reply_the_visitor_saw_is_not_mailed(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, outbox: Inbox
) -> None:
    bridge, _, clock, began = await follow_up_bridge(make_bridge, fake_slack, outbox)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the root")
        socket = await visitor.socket()
        seq = await agent_line(agent, root, visitor, "Hello Ann!")
        await socket.ws.send_json({"type": "seen", "seq": seq})
        # the bot's 👀 on Alice's message in Slack: the visitor's "seen" is stored
        await fake_slack.wait_for(lambda: fake_slack.calls_to("reactions.add"), message="the seen mark")
        await five_minutes_pass(bridge, clock, began)
        await bridge.wait_idle()
        assert outbox.mails == []
        await socket.close()
    finally:
        await visitor.close()
        await agent.close()


async def test_the_mails_link_resumes_the_chat_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, outbox: Inbox, database_url: str
) -> None:
    """On SQLite and PostgreSQL: the follow-up's queries, the signing key and the resume."""
    bridge, _, clock, began = await follow_up_bridge(make_bridge, fake_slack, outbox, database_url)
    visitor, agent, browser = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack), Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the root")
        await agent_line(agent, root, visitor, "Your refund is on its way.")
        await five_minutes_pass(bridge, clock, began)
        await wait_until(lambda: outbox.mails, what="the follow-up mail")
        found = re.search(r"#sitechat-resume=(\S+)", plain(outbox.mails[0]))
        assert found is not None
        ticket = found.group(1)

        path = "/api/v1/sites/acme/conversations/resume"
        status, body, _ = await browser.request("POST", path, {"ticket": ticket})
        assert status == 200, body
        assert body["conversation"]["id"] == visitor.conversation_id and body["token"] != visitor.token
        browser.conversation_id, browser.token = visitor.conversation_id, body["token"]
        assert "Your refund is on its way." in [m["text"] for m in (await browser.messages())["messages"]]
        # the old token stops working, and the link works once
        status, _, _ = await visitor.request("GET", f"/api/v1/conversations/{visitor.conversation_id}/messages")
        assert status == 403
        status, body, _ = await browser.request("POST", path, {"ticket": ticket}, headers={"Origin": ORIGIN})
        assert status == 403 and body["error"]["code"] == "link_expired"
        for bad in ["nonsense", ticket[:-1] + ("0" if ticket[-1] != "0" else "1")]:
            status, body, _ = await browser.request("POST", path, {"ticket": bad}, headers={"Origin": ORIGIN})
            assert status in (403, 422), (bad, body)
    finally:
        for someone in (visitor, agent, browser):
            await someone.close()
