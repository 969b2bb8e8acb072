"""The greeting within seconds (CONTRACT §10), through the public API and signed Slack requests: personal,
in the visitor's language, once — also with two instances on one database — and never after an agent
has answered. Waits are polls (``wait_until``) on what the visitor sees or on the bridge's timers having
run past a moment, never sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of, timer_rounds, timer_rounds_past, wait_until

GREETING = "Hi Ann, thanks for reaching out to Acme. Someone from our team will be with you shortly."


def system_lines(messages: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in messages["messages"] if m["author"]["role"] == "system"]


def greeted(visitor: Visitor) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def check() -> list[dict[str, Any]]:
        return system_lines(await visitor.messages())

    return check


def at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))


async def test_a_visitor_nobody_answers_is_greeted_once_after_the_sites_seconds(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, site={"auto_greeting_seconds": "0.5"})
    rounds = timer_rounds(bridge)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann", locale="en-GB")
        live = await visitor.socket()
        status, sent = await visitor.say("Hello? Is anyone there?")
        assert status == 201
        [hello] = await wait_until(greeted(visitor), 10, "the greeting")
        assert hello["text"] == GREETING
        assert hello["author"] == {"role": "system", "name": "Acme"}
        assert hello["seq"] == 2 and at(hello) - at(sent["message"]) >= timedelta(seconds=0.5)
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
        assert frame["message"]["text"] == GREETING

        # more rounds of the timers, more messages from the visitor: still one greeting
        assert (await visitor.say("Still there?"))[0] == 201
        await timer_rounds_past(rounds, datetime.now(UTC) + timedelta(seconds=0.6), "another greeting's time")
        assert [m["text"] for m in system_lines(await visitor.messages())] == [GREETING]
        # the thread is for what people say: the greeting shows in the transcript, not as a post of its own
        root = root_of(fake_slack)
        assert root is not None
        await bridge.wait_idle()
        assert not [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if GREETING in m["text"]]
        await live.close()
    finally:
        await visitor.close()


async def test_no_greeting_when_an_agent_answered_first(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, site={"auto_greeting_seconds": "1.5"})
    rounds = timer_rounds(bridge)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        status, sent = await visitor.say("Do you ship to Norway?")
        assert status == 201
        assert (await agent.reply("C0SUPPORT", root["ts"], "Yes, we do!"))[0] == 200
        await wait_until(lambda: _agent_answered(visitor), 10, "the agent's answer in the widget")
        await timer_rounds_past(rounds, at(sent["message"]) + timedelta(seconds=1.6), "the greeting's time")
        messages = (await visitor.messages())["messages"]
        # no greeting: only the visitor, the agent's face before her answer (CONTRACT §8), and the answer
        assert [(m["author"]["role"], m["text"]) for m in messages] == [
            ("visitor", "Do you ship to Norway?"),
            ("system", "Alice joined the chat"),
            ("agent", "Yes, we do!"),
        ]
    finally:
        await visitor.close()
        await agent.close()


async def _agent_answered(visitor: Visitor) -> bool:
    return any(m["author"]["role"] == "agent" for m in (await visitor.messages())["messages"])


async def test_the_greeting_speaks_the_visitors_language_and_the_sites_own_words(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    # the site's own French greeting; the catalogue's in the other languages
    site = {"auto_greeting_seconds": "0.3", "auto_greeting": {"fr": "Bonjour {name}, ici {site}."}}
    bridge = await make_bridge(fake_slack, site=site)
    people = {
        "de-DE": (
            "Jörg",
            "Hallo Jörg, vielen Dank für Ihre Nachricht an Acme. Gleich ist jemand aus unserem Team für Sie da.",
        ),
        "fr-CA, fr": ("Amélie", "Bonjour Amélie, ici Acme."),
        "nl-NL": ("Ann", GREETING),  # a language the widget does not speak: English
    }
    visitors = {locale: Visitor(bridge.url) for locale in people}
    try:
        for locale, visitor in visitors.items():
            await visitor.start(name=people[locale][0], locale=locale)
            assert (await visitor.say("?"))[0] == 201
        for locale, visitor in visitors.items():
            [hello] = await wait_until(greeted(visitor), 10, f"the greeting for {locale}")
            assert hello["text"] == people[locale][1]
    finally:
        await asyncio.gather(*(v.close() for v in visitors.values()))


async def test_the_browser_language_comes_from_accept_language_without_a_locale(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, site={"auto_greeting_seconds": "0.3", "auto_greeting": None})
    visitor = Visitor(bridge.url)
    try:
        status, body, _ = await visitor.request(
            "POST",
            "/api/v1/sites/acme/conversations",
            {"visitor": {}},
            headers={**visitor.headers(), "Accept-Language": "es-MX,es;q=0.9,en;q=0.5"},
        )
        assert status == 201
        visitor.conversation_id, visitor.token = body["conversation"]["id"], body["token"]
        assert (await visitor.say("Hola"))[0] == 201
        [hello] = await wait_until(greeted(visitor), 10, "the greeting")
        assert hello["text"] == "Hola, gracias por contactar con Acme. Enseguida le atiende alguien de nuestro equipo."
    finally:
        await visitor.close()


async def test_two_instances_on_one_database_greet_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    site = {"auto_greeting_seconds": "0.3"}
    a = await make_bridge(fake_slack, database_url=postgres_url, site=site)
    b = await make_bridge(fake_slack, database_url=postgres_url, site=site)
    rounds_a, rounds_b = timer_rounds(a), timer_rounds(b)
    visitors = [Visitor(a.url), Visitor(b.url), Visitor(a.url)]
    try:
        for visitor in visitors:
            await visitor.start(name="Ann")
            assert (await visitor.say("Hello?"))[0] == 201
        for visitor in visitors:
            await wait_until(greeted(visitor), 10, "the greeting")
        later = datetime.now(UTC) + timedelta(seconds=0.2)
        await timer_rounds_past(rounds_a, later, "the greetings on A")
        await timer_rounds_past(rounds_b, later, "the greetings on B")
        for visitor in visitors:
            assert [m["text"] for m in system_lines(await visitor.messages())] == [GREETING]
    finally:
        await asyncio.gather(*(v.close() for v in visitors))
