"""``/sitechat`` (CONTRACT §8), end to end: signed slash-command form posts, answered ephemerally — in the
acknowledgement, or at the command's ``response_url`` on the fake Slack when the answer takes longer —
``open``, ``stats``, ``away``/``back`` (the widget's ``online``, the same on every instance), ``help`` with the
configured note prefix."""

from __future__ import annotations

import re

from tests.conftest import BridgeFactory
from tests.e2e.agent_day import slash
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of, wait_until


async def _site_online(visitor: Visitor) -> bool:
    status, info, _ = await visitor.request("GET", "/api/v1/sites/acme")
    assert status == 200, info
    return bool(info["online"])


async def test_open_lists_who_waits_where_how_long_who_claimed_and_links_the_thread(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    ann, bob, agent = Visitor(bridge.url), Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        assert "No open conversations" in (await slash(agent, fake_slack, "open"))["text"]
        await ann.start(name="<!channel> Ann")
        await bob.start(name="Bob", topic="sales")
        ann_root = await fake_slack.wait_for(lambda: root_of(fake_slack, visitor="Ann"), message="Ann's thread")
        bob_root = await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES", "Bob"), message="Bob's thread")
        await ann.say("Hello?")
        assert (await agent.reply("C0SALES", bob_root["ts"], "!claim"))[0] == 200
        await fake_slack.wait_for(
            lambda: "Claimed by Alice" in str(fake_slack.message("C0SALES", bob_root["ts"])), message="Bob's claim"
        )
        await bridge.wait_idle()

        answer = await slash(agent, fake_slack, "open")
        assert answer["response_type"] == "ephemeral"
        text = answer["text"]
        lines = text.splitlines()
        assert lines[0] == "*Open conversations: 2*"
        ann_line, bob_line = lines[1], lines[2]  # oldest first
        assert ann_line.startswith("• *&lt;!channel&gt; Ann* — Acme — waiting <1 min · not claimed · <https://")
        link = re.search(r"<(https://[^|>]+)\|thread>", ann_line)
        assert (
            link and link[1] == f"https://sitechat-test.slack.com/archives/C0SUPPORT/p{ann_root['ts'].replace('.', '')}"
        )
        assert bob_line.startswith("• *Bob* — Acme · Sales — open <1 min · claimed by Alice · <https://")
        assert "/archives/C0SALES/p" in bob_line
        assert "*Sites*\nAcme: online" in text
        assert len(fake_slack.calls_to("chat.getPermalink")) == 2
        await slash(agent, fake_slack, "open")
        assert len(fake_slack.calls_to("chat.getPermalink")) == 2  # a thread's link is asked for once
    finally:
        for who in (ann, bob, agent):
            await who.close()


async def test_away_and_back_switch_the_widget_on_every_instance_and_say_who(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    first = await make_bridge(fake_slack, database_url=postgres_url)
    second = await make_bridge(fake_slack, database_url=postgres_url)
    on_first, on_second, agent = Visitor(first.url), Visitor(second.url), SlackAgent(first.url, fake_slack)
    try:
        assert await _site_online(on_first) and await _site_online(on_second)
        answer = await slash(agent, fake_slack, "away acme")
        assert answer["text"].startswith("*Acme now shows offline in the widget until someone says back.*")
        assert not await _site_online(on_first) and not await _site_online(on_second)
        listed = (await slash(agent, fake_slack, "open"))["text"]
        assert re.search(r"Acme: away \(set by Alice, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", listed), listed
        assert "*Acme is back.*" in (await slash(agent, fake_slack, "back"))["text"]  # no site: every site
        assert await _site_online(on_first) and await _site_online(on_second)
        assert "There is no site 'nope'" in (await slash(agent, fake_slack, "away nope"))["text"]
        assert await _site_online(on_second)
    finally:
        for who in (on_first, on_second, agent):
            await who.close()


async def test_stats_are_the_reports_numbers(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    visitor, missed, agent = Visitor(bridge.url), Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Hello?")
        assert (await agent.reply("C0SUPPORT", root["ts"], "Hi Ann!"))[0] == 200
        await wait_until(lambda: _has_agent_line(visitor), what="the answer")
        cid = visitor.conversation_id
        assert (await visitor.request("POST", f"/api/v1/conversations/{cid}/close"))[0] == 200
        assert (await visitor.request("POST", f"/api/v1/conversations/{cid}/rating", {"score": 4}))[0] == 200
        await missed.start(name="Bo")
        await missed.say("Anyone?")
        assert (await missed.request("POST", f"/api/v1/conversations/{missed.conversation_id}/close"))[0] == 200

        for typed in ("stats", "stats today", "stats 7d acme", "stats 30d"):
            text = (await slash(agent, fake_slack, typed))["text"]
            lines = text.splitlines()
            assert lines[1:3] == ["Conversations: 2", "First response: median " + lines[2].split("median ", 1)[1]]
            assert "within a minute 100% (1 answered)" in lines[2], lines[2]
            assert lines[3:] == ["Rating: 4.0 / 5 (1 rating)", "Missed: 1 (1 closed unanswered, 0 offline messages)"]
        assert (await slash(agent, fake_slack, "stats 7d"))["text"].startswith("*All sites, the last 7 days (since ")
        assert (await slash(agent, fake_slack, "stats today acme"))["text"].startswith("*Acme, today (since ")
        wrong = (await slash(agent, fake_slack, "stats yesterday"))["text"]
        assert wrong.startswith("*/sitechat stats takes today, 7d or 30d, and a site (acme).*")
    finally:
        for who in (visitor, missed, agent):
            await who.close()


async def _has_agent_line(visitor: Visitor) -> bool:
    return any(m["author"]["role"] == "agent" for m in (await visitor.messages())["messages"])


async def test_help_and_anything_unknown_show_the_configured_note_prefix(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, note_prefix=">>")
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        for typed in ("help", "", "frobnicate now"):
            text = (await slash(agent, fake_slack, typed))["text"]
            for command in ("open", "stats [today|7d|30d]", "away [SITE]", "back [SITE]", "help"):
                assert f"/sitechat {command}" in text, (command, text)
            assert "start it with &gt;&gt; for an internal note" in text and "//" not in text.replace("https://", "")
            assert text.startswith("*There is no /sitechat frobnicate.*") == (typed == "frobnicate now")
        # and !help in a thread
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        assert (await agent.reply("C0SUPPORT", root["ts"], "!help"))[0] == 200
        helped = await fake_slack.wait_for(
            lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "!invite" in m["text"]],
            message="the thread's help",
        )
        assert "Start a reply with &gt;&gt; for an internal note" in helped[0]["text"]
        assert "//" not in helped[0]["text"]
    finally:
        await visitor.close()
        await agent.close()


async def test_a_slow_answer_follows_at_the_response_url(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await bridge.wait_idle()  # the root's ts recorded: the thread is known
        quick = await slash(agent, fake_slack, "help")
        assert (quick["via"], quick["response_type"]) == ("ack", "ephemeral")
        fake_slack.set_latency(2.5, "chat.getPermalink")  # Slack slow to say where the thread is
        slow = await slash(agent, fake_slack, "open")
        assert (slow["via"], slow["response_type"]) == ("response_url", "ephemeral"), slow
        assert slow["text"].startswith("*Open conversations: 1*\n• *Ann* — Acme — open <1 min")
    finally:
        await visitor.close()
        await agent.close()
