"""Helpers of the agent's-day tests (``test_agent_day_*.py``): ``/sitechat`` as Slack sends it, the answer
Slack gets at the command's ``response_url``, and the bridge's timer rounds (waits are polls, never sleeps)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import signed_form, slash_command_form
from tests.harness import SIGNING_SECRET, SlackAgent, Visitor


async def slash(agent: SlackAgent, slack: FakeSlack, text: str, channel: str = "C0SUPPORT") -> dict[str, Any]:
    """``/sitechat TEXT`` typed by ``agent``: the answer (``text``, ``response_type``…), from the command's
    acknowledgement or, when that was empty, from what the bridge posted to the command's ``response_url``
    (``via`` says which)."""
    url = slack.response_url()
    form = slash_command_form("/sitechat", text, agent.user_id, channel, user_name="alice", response_url=url)
    status, body = await agent.post_signed(*signed_form(SIGNING_SECRET, form))
    assert status == 200, (status, body)
    if body:
        assert not slack.responses_to(url)
        return {**json.loads(body), "via": "ack"}
    answers = await slack.wait_for(lambda: slack.responses_to(url), message=f"the answer to /sitechat {text}")
    assert len(answers) == 1, answers
    return {**answers[0], "via": "response_url"}


async def system_lines(visitor: Visitor) -> list[dict[str, Any]]:
    return [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "system"]


def reminders(slack: FakeSlack, root: dict[str, Any], channel: str = "C0SUPPORT") -> list[dict[str, Any]]:
    return [m for m in slack.replies(channel, root["ts"]) if "⏰" in m["text"]]
