"""A warm close (CONTRACT §10): ``!bye`` in the thread (a signed Slack event) sends the site's closing, in
the visitor's language and by name, from the agent who typed it — then closes as ever: the transcript in
the thread, the widget asked for a rating."""

from __future__ import annotations

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of


async def bye(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, *, command: str = "!bye", name: str | None = "Ann", **start: str
) -> tuple[list[dict], list[dict]]:
    """A conversation ended with ``command``: (the widget's frames, the thread's replies)."""
    bridge = await make_bridge(fake_slack, site={"closing": {"es": "¡Hasta pronto, {name}!"}})
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name=name, **start)
        root = await fake_slack.wait_for(lambda: root_of(fake_slack, visitor=name or "Visitor"), message="root")
        live = await visitor.socket()
        assert (await visitor.say("Thanks, that's all!"))[0] == 201
        assert (await agent.reply("C0SUPPORT", root["ts"], command))[0] == 200
        await live.wait_frame(lambda f: f["type"] == "rating_requested")
        await bridge.wait_idle()
        await live.close()
        return live.frames, fake_slack.replies("C0SUPPORT", root["ts"])
    finally:
        await visitor.close()
        await agent.close()


def agent_said(frames: list[dict]) -> list[str]:
    return [
        f["message"]["text"] for f in frames if f["type"] == "message" and f["message"]["author"]["role"] == "agent"
    ]


async def test_bye_sends_the_closing_by_name_and_closes(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    frames, thread = await bye(make_bridge, fake_slack)
    [closing] = [f["message"] for f in frames if f["type"] == "message" and f["message"]["author"]["role"] == "agent"]
    assert closing["text"] == "Thanks Ann! Come back any time."
    assert closing["author"]["name"] == "Alice"
    kinds = [f["type"] for f in frames]
    assert kinds.index("status") > kinds.index("message") and {"type": "status", "status": "closed"} in frames
    [transcript] = [m for m in thread if "Transcript" in m["text"]]
    assert "Alice: Thanks Ann! Come back any time." in transcript["text"]
    assert not [m for m in thread if m["text"] == "!bye"]


async def test_bye_in_the_visitors_language(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    frames, _ = await bye(make_bridge, fake_slack, locale="de-DE")
    assert agent_said(frames) == ["Danke, Ann! Schauen Sie gerne jederzeit wieder vorbei."]


async def test_bye_with_the_sites_spanish_closing(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    frames, _ = await bye(make_bridge, fake_slack, locale="es-ES")
    assert agent_said(frames) == ["¡Hasta pronto, Ann!"]


async def test_bye_without_a_name(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    frames, _ = await bye(make_bridge, fake_slack, name=None)
    assert agent_said(frames) == ["Thanks! Come back any time."]


async def test_bye_in_the_agents_own_words(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    frames, _ = await bye(make_bridge, fake_slack, command="!bye Take care, Ann!", locale="de-DE")
    assert agent_said(frames) == ["Take care, Ann!"]
