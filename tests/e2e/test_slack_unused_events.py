"""Every correctly signed request Slack may send gets a 2xx within 3 s, also the ones the bridge does not use.

Slack counts a non-2xx (bolt answers 404 when no listener matches) as a failed delivery, retries it,
and turns event delivery off for an app that keeps failing. The event types come from Slack's own
Events API description (AsyncAPI 2, ``slack_events_api_asyncapi_v2.json``): one request per type,
with a minimal event built from its schema, plus the spec's whole examples.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import (
    VERIFICATION_TOKEN,
    block_actions_payload,
    event_callback,
    interactive_form,
    new_ts,
    signed_form,
    signed_json,
    slash_command_form,
    url_verification,
)
from tests.harness import (
    SIGNING_SECRET,
    BridgeFactory,
    Clock,
    RunningBridge,
    SlackAgent,
    TunedSlackBridge,
    Visitor,
    acme_settings,
    root_of,
    visitor_and_agent,
    wait_until,
)

JSON = dict[str, Any]

#: Slack's published Events API description (github.com/slackapi/slack-api-specs, see its SOURCES.md)
#: a byte-exact copy of Slack's events spec (tests/fakes/specs/SOURCES.md)
SPEC = Path(__file__).resolve().parents[1] / "fakes" / "specs" / "slack_events_api_asyncapi_v2.json"
#: envelope types: Slack posts these as the whole body, not as an ``event`` inside an ``event_callback``
OUTER_TYPES = {"url_verification", "app_rate_limited"}
ACK_DEADLINE = 3.0  # seconds: Slack's limit before it counts the delivery as failed


def _spec() -> JSON:
    spec: JSON = json.loads(SPEC.read_text())
    return spec


def _resolve(spec: JSON, schema: JSON) -> JSON:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        node: Any = spec
        for key in ref.removeprefix("#/").split("/"):
            node = node[key]
        return dict(node)
    return schema


def _plausible(name: str, schema: JSON) -> Any:
    """A value for a required field: shaped by its schema type, made plausible by its name."""
    kind = schema.get("type")
    if kind == "object":
        props: JSON = schema.get("properties") or {}
        return {key: _plausible(key, props.get(key) or {}) for key in schema.get("required") or ()}
    if kind == "array":
        items = schema.get("items") or {}
        return [_plausible(name.rstrip("s"), items)] if schema.get("minItems", 0) else []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return int(time.time())
    if kind != "string":
        return None  # untyped in the spec (a message's ``comment``, a file's ``preview``)
    if name.endswith("ts"):
        return new_ts()
    by_name = {
        "channel": "C0SUPPORT",
        "channels": "C0SUPPORT",
        "user": "UAGENT",
        "editor": "UAGENT",
        "last_editor": "UAGENT",
        "subtype": "message_deleted",
        "mimetype": "text/plain",
        "name": "notes.txt",
        "title": "notes.txt",
        "mode": "hosted",
    }
    if name in by_name:
        return by_name[name]
    if "url" in name or name.startswith("permalink"):
        return "https://files.slack.com/files-pri/T0TEAM-F0FILE/notes.txt"
    return f"{name}-value"


def _event_types(spec: JSON) -> dict[str, JSON]:
    """Each event type of the spec (its channel's documented name) → its payload schema."""
    types: dict[str, JSON] = {}
    for channel in spec["channels"].values():
        message = channel["subscribe"]["message"]
        name = message["externalDocs"]["description"].removeprefix("Event documentation for ")
        types[name] = _resolve(spec, message["payload"])
    return types


def _minimal_event(name: str, payload_schema: JSON) -> JSON:
    """The inner ``event``: its required fields (at least ``type`` and ``event_ts``) with plausible values."""
    event_schema = (payload_schema.get("properties") or {}).get("event") or {}
    event: JSON = _plausible("event", {"type": "object", **event_schema})
    kind, _, channel_type = name.partition(".")  # "message.im": a message event in a DM
    event["type"] = kind
    event.setdefault("event_ts", new_ts())
    if channel_type:
        event["channel_type"] = channel_type
    return event


def _envelope(event: JSON) -> JSON:
    # ``authed_users`` is required by the spec's wrapper (deprecated by Slack, still sent)
    return {**event_callback(event), "authed_users": ["UBOT"]}


def _outer(name: str) -> JSON:
    """The two envelope types as Slack documents them (api.slack.com/events/<name>)."""
    if name == "url_verification":
        return url_verification("a-challenge-from-the-spec")
    return {
        "token": VERIFICATION_TOKEN,
        "type": "app_rate_limited",
        "team_id": "T0TEAM",
        "minute_rate_limited": int(time.time()) // 60 * 60,
        "api_app_id": "AAPP",
    }


def _spec_payloads(spec: JSON) -> list[tuple[str, JSON]]:
    """(label, whole request body): one per event type, then the spec's own examples."""
    payloads = [
        (name, _outer(name) if name in OUTER_TYPES else _envelope(_minimal_event(name, schema)))
        for name, schema in _event_types(spec).items()
    ]
    wrapper = spec["components"]["schemas"]["GenericEventWrapper"]
    payloads += [(f"example {e['event']['type']}", e) for e in wrapper.get("x-examples") or ()]
    bare = wrapper["properties"]["event"].get("x-examples") or ()
    payloads += [(f"example event {e['type']}", _envelope(e)) for e in bare]
    return payloads


async def _timed_post(agent: SlackAgent, body: bytes, headers: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    status, text = await agent.post_signed(body, headers)
    return status, text, time.monotonic() - started


async def _exchange_still_works(visitor: Visitor, agent: SlackAgent, slack: FakeSlack) -> None:
    await visitor.start()
    root = await slack.wait_for(lambda: root_of(slack), message="the thread root")
    assert (await visitor.say("still there?"))[0] == 201
    await slack.wait_for(
        lambda: any(m["text"] == "still there?" for m in slack.replies("C0SUPPORT", root["ts"])),
        message="the visitor's line in the thread",
    )
    await agent.reply("C0SUPPORT", root["ts"], "yes, here")

    async def agent_texts() -> list[str]:
        return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]

    assert await wait_until(agent_texts, what="the agent's reply in the widget") == ["yes, here"]


async def test_every_event_type_of_the_spec_is_acknowledged_and_ignored(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    payloads = _spec_payloads(_spec())
    assert len(payloads) >= 66 + 3, "the spec lists 66 event types and three examples"
    answers = {}
    for label, payload in payloads:
        status, text, seconds = await _timed_post(agent, *signed_json(SIGNING_SECRET, payload))
        answers[label] = (status, seconds)
        if label == "url_verification":
            assert json.loads(text) == {"challenge": "a-challenge-from-the-spec"}
    refused = {label: a for label, a in answers.items() if not (200 <= a[0] < 300 and a[1] < ACK_DEADLINE)}
    assert not refused, f"not acknowledged with a 2xx within {ACK_DEADLINE:g} s: {refused}"
    # none of them was taken for anything: nothing posted, nothing stored
    assert not fake_slack.calls_to("chat.postMessage")
    await _exchange_still_works(visitor, agent, fake_slack)


async def test_unknown_interactivity_and_commands_are_acknowledged_and_ignored(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    other_button = block_actions_payload("another_apps_button", "x", "UAGENT", "alice", "C0SUPPORT", new_ts())
    base = {"user": other_button["user"], "team": other_button["team"], "api_app_id": "AAPP", "token": "t"}
    view = {"id": "V0VIEW", "type": "modal", "callback_id": "someone_elses_modal", "state": {"values": {}}}
    interactive = {
        "block_actions with another action id": other_button,
        "view_submission": {**base, "type": "view_submission", "view": view, "trigger_id": "1.2.x"},
        "view_closed": {**base, "type": "view_closed", "view": view, "is_cleared": False},
        "global shortcut": {**base, "type": "shortcut", "callback_id": "do_things", "trigger_id": "1.2.x"},
        "message shortcut": {
            **base,
            "type": "message_action",
            "callback_id": "do_things",
            "trigger_id": "1.2.x",
            "channel": {"id": "C0SUPPORT", "name": "c0support"},
            "message": {"type": "message", "user": "UAGENT", "ts": new_ts(), "text": "hi"},
            "message_ts": new_ts(),
            "response_url": "https://hooks.slack.com/app/T0TEAM/1/x",
        },
        "block_suggestion": {
            **base,
            "type": "block_suggestion",
            "action_id": "someone_elses_select",
            "block_id": "b",
            "value": "ab",
            "container": {"type": "view", "view_id": "V0VIEW"},
        },
    }
    answers = {}
    for label, payload in interactive.items():
        status, _, seconds = await _timed_post(agent, *signed_form(SIGNING_SECRET, interactive_form(payload)))
        answers[label] = (status, seconds)
    command = slash_command_form("/another-command", "hello", "UAGENT", "C0SUPPORT")
    status, _, seconds = await _timed_post(agent, *signed_form(SIGNING_SECRET, command))
    answers["another slash command"] = (status, seconds)
    refused = {label: a for label, a in answers.items() if not (200 <= a[0] < 300 and a[1] < ACK_DEADLINE)}
    assert not refused, f"not acknowledged with a 2xx within {ACK_DEADLINE:g} s: {refused}"
    # a forged one is still refused: acknowledging everything is only for what Slack signed
    forged = signed_json("not-the-secret", _envelope({"type": "team_join", "event_ts": new_ts()}))
    assert (await agent.post_signed(*forged))[0] == 401
    await _exchange_still_works(visitor, agent, fake_slack)


async def test_unused_events_over_socket_mode_are_acknowledged(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    await make_bridge(fake_slack, slack_app_token=fake_slack.app_token, slack_signing_secret=None)
    await fake_slack.wait_socket_connected(timeout=10)
    for event in ({"type": "team_join", "event_ts": new_ts()}, {"type": "reaction_added", "event_ts": new_ts()}):
        ack = await fake_slack.send_socket_event(_envelope(event), timeout=ACK_DEADLINE)
        assert ack["envelope_id"]
    modal = {"id": "V0VIEW", "type": "modal", "callback_id": "someone_elses_modal", "state": {"values": {}}}
    submission = {"type": "view_submission", "user": {"id": "UAGENT"}, "team": {"id": "T0TEAM"}, "view": modal}
    assert (await fake_slack.send_socket_event(submission, type="interactive", timeout=ACK_DEADLINE))["envelope_id"]


# ---------------------------------------------------------------------- app_rate_limited


async def test_app_rate_limited_is_acknowledged_logged_and_reported_for_an_hour(
    sqlite_url: str, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    bridge = await TunedSlackBridge(acme_settings(sqlite_url, fake_slack), clock=clock).start()
    try:
        async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
            assert (await visitor.request("GET", "/readyz"))[0] == 200
            with caplog.at_level(logging.WARNING):
                for _ in range(2):
                    status, _, seconds = await _timed_post(agent, *signed_json(SIGNING_SECRET, _outer("rate")))
                    assert 200 <= status < 300 and seconds < ACK_DEADLINE
            assert any(r.levelno == logging.WARNING and "app_rate_limited" in r.getMessage() for r in caplog.records)
            status, body, _ = await visitor.request("GET", "/readyz")
            # shown, but the instance stays in rotation: Slack sheds the workspace's events, not ours
            assert (status, body["problems"]) == (200, [])
            warning = next(w for w in body["warnings"] if "rate limit" in w)
            assert "2 times" in warning, warning

            clock.now += 59 * 60  # still within the hour after the last one
            assert any("rate limit" in w for w in (await visitor.request("GET", "/readyz"))[1]["warnings"])
            clock.now += 2 * 60
            status, body, _ = await visitor.request("GET", "/readyz")
            assert (status, body["problems"], body["warnings"]) == (200, [], [])

            # a relay works meanwhile and after: nothing else was touched
            await _exchange_still_works(visitor, agent, fake_slack)
    finally:
        await bridge.stop()
