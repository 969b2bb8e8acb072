"""The README's picture of a Slack thread cannot silently rot: the committed Block Kit payload
(``docs/slack-thread.json``) is the root the bridge posts now for the same scripted conversation, but for
what changes from run to run (``tests/slack_thread.py``: ``steady``). When this fails, the root changed:
run ``.venv/bin/python docs/make_slack_thread.py`` and commit the new JSON and picture."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.slack_thread import AGENT_ANSWER, AGENT_NOTE, VISITOR_FIRST, VISITOR_THANKS, record_thread, steady

DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_slack_thread", DOCS / "make_slack_thread.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_committed_payload_and_picture_show_the_thread_the_bridge_makes_now() -> None:
    committed = json.loads((DOCS / "slack-thread.json").read_text(encoding="utf-8"))
    assert list(committed) == ["blocks"]  # what Block Kit Builder takes
    thread = await record_thread()
    assert steady(committed["blocks"]) == steady(thread.root["blocks"]), (
        "docs/slack-thread.json is not the root the bridge posts now: run docs/make_slack_thread.py"
    )
    assert (DOCS / "slack-thread.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the page the picture is taken of has the whole thread: the root's blocks, then every reply
    page = docs_script().thread_page(thread)
    for shown in (
        "New chat from Ann Lee",
        "Came from<br>https://www.bing.com/search?q=acme+team+plan&amp;form=QBLH",
        "Status: Claimed by Alice",
        '<span class="button danger">Close</span>',
        VISITOR_FIRST,
        "the <b>Team</b> plan includes phone support",
        '<a href="https://acme.example/pricing#team">the plan details</a>',
        AGENT_NOTE,
        "!claim",
        VISITOR_THANKS,
    ):
        assert shown in page, shown
    assert [m["text"] for m in thread.replies if m.get("user") == "UAGENT"] == [AGENT_ANSWER, AGENT_NOTE, "!claim"]
    assert page.index(VISITOR_FIRST) < page.index("plan details") < page.index(VISITOR_THANKS)


def test_steady_hides_only_what_changes_from_run_to_run() -> None:
    field = {"type": "plain_text", "text": "Local time\nThu 14:13 (UTC+01:00) when the chat began"}
    button = {"type": "button", "text": {"type": "plain_text", "text": "Close"}, "value": "abc", "style": "danger"}
    assert steady([field, button]) == [
        {"type": "plain_text", "text": "Local time\n{local time} when the chat began"},
        {**button, "value": "{conversation id}"},
    ]
    assert steady([{**button, "text": {"type": "plain_text", "text": "Claim"}}]) != steady([button])


@pytest.mark.parametrize(
    ("slack", "html"),
    [
        ("*bold* and _italic_ and `code`", "<b>bold</b> and <i>italic</i> and <code>code</code>"),
        (
            "<https://a.example/x?a=1&amp;b=2|the *docs*>",
            '<a href="https://a.example/x?a=1&amp;b=2">the <b>docs</b></a>',
        ),
        ("<https://a.example>", '<a href="https://a.example">https://a.example</a>'),
        ("&lt;b&gt; &amp; snake_case_name 2*3*4", "&lt;b&gt; &amp; snake_case_name 2*3*4"),
        ("two\nlines", "two<br>lines"),
    ],
)
def test_mrkdwn_is_drawn_minimally(slack: str, html: str) -> None:
    assert docs_script().mrkdwn(slack) == html
