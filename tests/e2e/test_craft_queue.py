"""Honest waits (CONTRACT §10): past the site's MAX_WAITING conversations waiting for a first answer, a new
visitor's first message brings their place in line and an estimate from the site's recent median first
response, in their language; an answered conversation is no longer in line."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of, wait_until

QUIET = {"auto_greeting_seconds": 0, "max_waiting": 2}


def system_texts(messages: dict[str, Any]) -> list[str]:
    return [m["text"] for m in messages["messages"] if m["author"]["role"] == "system"]


async def test_past_max_waiting_a_new_visitor_hears_their_place(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    # on PostgreSQL a plain line is stored by one database call, and the place is told after it
    bridge = await make_bridge(fake_slack, database_url, site=QUIET)
    agent = SlackAgent(bridge.url, fake_slack)
    names = ["Ann", "Bob", "Cem", "Dan", "Eva"]
    visitors = {name: Visitor(bridge.url) for name in names}
    try:
        # Ann is answered at once: the site's recent first response is a matter of seconds
        await visitors["Ann"].start(name="Ann")
        assert (await visitors["Ann"].say("Hi"))[0] == 201
        root = await fake_slack.wait_for(lambda: root_of(fake_slack, visitor="Ann"), message="Ann's root")
        assert (await agent.reply("C0SUPPORT", root["ts"], "Hello Ann!"))[0] == 200
        await wait_until(lambda: _answered(visitors["Ann"]), 10, "Ann's answer")

        # Bob and Cem wait: two waiting is within MAX_WAITING, nobody is told a place
        for name in ("Bob", "Cem"):
            await visitors[name].start(name=name)
            status, sent = await visitors[name].say("Anyone there?")
            assert status == 201 and sent["message"]["seq"] == 1
            assert system_texts(await visitors[name].messages()) == []

        # Dan is the third waiting: more than two
        await visitors["Dan"].start(name="Dan")
        assert (await visitors["Dan"].say("Hello"))[0] == 201
        assert system_texts(await visitors["Dan"].messages()) == [
            "You're number 3 in line — we'll be with you in about a minute."
        ]
        # his second message is no news: the place is told once
        assert (await visitors["Dan"].say("Hello again"))[0] == 201
        assert len(system_texts(await visitors["Dan"].messages())) == 1

        # Eva, in German, is the fourth
        await visitors["Eva"].start(name="Eva", locale="de-DE")
        assert (await visitors["Eva"].say("Hallo"))[0] == 201
        assert system_texts(await visitors["Eva"].messages()) == [
            "Sie sind Nummer 4 in der Reihe — in etwa einer Minute sind wir für Sie da."
        ]
        messages = (await visitors["Eva"].messages())["messages"]
        assert messages[1]["author"] == {"role": "system", "name": "Acme"}
    finally:
        await agent.close()
        await asyncio.gather(*(v.close() for v in visitors.values()))


async def test_without_a_recent_answer_the_place_comes_without_a_guess(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, site={**QUIET, "max_waiting": 0})
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann", locale="fr-FR")
        assert (await visitor.say("Bonjour"))[0] == 201
        assert system_texts(await visitor.messages()) == [
            "Vous êtes numéro 1 dans la file — nous sommes à vous dès que possible."
        ]
    finally:
        await visitor.close()


async def _answered(visitor: Visitor) -> bool:
    return any(m["author"]["role"] == "agent" for m in (await visitor.messages())["messages"])
