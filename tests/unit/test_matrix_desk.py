"""``!sitechat`` and the mentions of Matrix, pure: which messages are desk commands, how each answer reads
(plain ``body`` and the HTML subset), who ``!invite`` names, and when a reminder may say ``@room``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.html_subset import strict
from adapters.matrix.desk import (
    answer_content,
    answer_txn,
    desk_command,
    desk_line,
    render,
    thread_link,
)
from adapters.matrix.format import matrix_to, notice_content, thread_relation
from adapters.matrix.mentions import (
    invitation_content,
    invite_text,
    reminder_mentions_room,
    room_mention_allowed,
    user_ids,
    user_link,
    with_room_mention,
)
from bridge.desk_answers import DeskHelp, OpenConversation, OpenList, Period, PresenceSet, SiteState, StatsReport
from bridge.insight import Missed, Ratings, ResponseTimes, Stats
from bridge.model import ThreadRef

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
ROOM, ROOT = "!chat:example.org", "$Root_Event-1"

# -- which messages are desk commands -------------------------------------------------------------

LINES: dict[str, str | None] = {
    "!sitechat open": "open",
    "!sitechat": "",
    "  !SiteChat   stats 7d  ": "stats 7d",
    "!sitechat\naway acme": "away acme",
    "!sitechatty open": None,
    "sitechat open": None,
    "please !sitechat open": None,
    "": None,
}


@pytest.mark.parametrize(("body", "line"), LINES.items())
def test_desk_line(body: str, line: str | None) -> None:
    assert desk_line(body) == line


def _message(content: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "event_id": "$cmd", "sender": "@alice:example.org", "content": content, **top}


COMMANDS: list[tuple[dict[str, Any], str | None]] = [
    (_message({"msgtype": "m.text", "body": "!sitechat open"}), "open"),
    (_message({"msgtype": "m.text", "body": "!sitechat"}), ""),
    # in a thread, ``!`` lines are the conversation's commands; a reply or an edit is no desk command either
    (_message({"msgtype": "m.text", "body": "!sitechat open", "m.relates_to": thread_relation(ROOT, ROOT)}), None),
    (_message({"msgtype": "m.text", "body": "!sitechat", "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}}), None),
    (_message({"msgtype": "m.text", "body": "* !sitechat", "m.new_content": {"body": "!sitechat"}}), None),
    (_message({"msgtype": "m.notice", "body": "!sitechat open"}), None),  # another bot's notice
    (_message({"msgtype": "m.text", "body": "hello"}), None),
    (_message({"msgtype": "m.text", "body": "!sitechat open"}, type="m.room.encrypted"), None),
    (_message({"msgtype": "m.text", "body": 42}), None),
]


@pytest.mark.parametrize(("source", "line"), COMMANDS)
def test_desk_command(source: dict[str, Any], line: str | None) -> None:
    command = desk_command(source)
    assert (command.line if command else None) == line
    if command:
        assert (command.event_id, command.sender) == ("$cmd", "@alice:example.org")


# -- links ----------------------------------------------------------------------------------------


def test_thread_link() -> None:
    assert thread_link(ThreadRef(f"{ROOM}|{ROOT}")) == matrix_to(ROOM, ROOT)
    assert thread_link(None) is None
    assert thread_link(ThreadRef("C0SUPPORT:1712.0001")) is None  # not a Matrix thread: no link


# -- the answers ----------------------------------------------------------------------------------

ACME = SiteState("acme", "Acme", away=False, in_hours=True)
BETA_AWAY = SiteState("beta", "Beta & Co", away=True, in_hours=True, set_by="Alice", set_at=NOW)


def _conversation(name: str, **kw: Any) -> OpenConversation:
    fields: dict[str, Any] = {
        "id": f"c-{name}",
        "site_id": "acme",
        "site_name": "Acme",
        "topic_label": None,
        "visitor_name": name,
        "started_at": NOW - timedelta(minutes=30),
        "waiting_since": None,
        "claimed_by": None,
        "threads": {},
    } | kw
    return OpenConversation(**fields)


def test_open_list_links_each_thread_and_names_its_state() -> None:
    answer = OpenList(
        (
            _conversation(
                "Ann",
                topic_label="Sales",
                waiting_since=NOW - timedelta(minutes=4, seconds=59),
                threads={"matrix": ThreadRef(f"{ROOM}|{ROOT}"), "slack": ThreadRef("C0:1.2")},
            ),
            _conversation("<b>Bob</b>", claimed_by="Alice & Carol", threads={"slack": ThreadRef("C0:1.3")}),
        ),
        (ACME, BETA_AWAY),
        NOW,
        more=3,
    )
    body, html = render(answer, "matrix")
    link = matrix_to(ROOM, ROOT)
    assert body.split("\n") == [
        "Open conversations: 5",
        f"• Ann — Acme · Sales — waiting 4 min · not claimed · {link}",
        "• <b>Bob</b> — Acme — open 30 min · claimed by Alice & Carol · (no thread here)",
        "…and 3 more (the oldest are listed).",
        "",
        "Sites",
        "Acme: online",
        "Beta & Co: away (set by Alice, 2026-03-02 14:30 UTC)",
    ]
    assert html == strict(html)  # already the subset: nothing for the sanitizer to take out
    assert (
        "<li><strong>Ann</strong> — Acme · Sales — waiting 4 min · not claimed · "
        f'<a href="{link}" target="_blank" rel="noopener noreferrer nofollow">thread</a></li>'
    ) in html
    assert "<li><strong>&lt;b&gt;Bob&lt;/b&gt;</strong> — Acme — open 30 min · claimed by Alice &amp; Carol" in html
    assert "Beta &amp; Co: away" in html


def test_no_open_conversations() -> None:
    body, html = render(OpenList((), (ACME,), NOW), "matrix")
    assert body == "No open conversations.\n\nSites\nAcme: online"
    assert "<ul>" not in html


def test_stats_presence_and_help() -> None:
    stats = Stats(
        site=None,
        zone="UTC",
        start=NOW.replace(hour=0, minute=0),
        end=NOW,
        conversations=7,
        response=ResponseTimes(answered=5, median=42.0, p90=90.0, within_minute=0.6),
        per_day=(),
        ratings=Ratings(count=2, average=4.5, distribution=(0, 0, 0, 1, 1), low=()),
        missed=Missed(unanswered=1, offline=2),
        heatmap=(),
    )
    body, html = render(StatsReport(Period.TODAY, "All sites", stats), "matrix")
    assert body.split("\n")[0] == "All sites, today (since Mon 02 Mar 00:00 UTC)"
    assert "Conversations: 7" in body.split("\n")
    assert "Missed: 3 (1 closed unanswered, 2 offline messages)" in body
    assert html.startswith("<strong>All sites, today")

    body, html = render(PresenceSet(True, "Alice", (BETA_AWAY,)), "matrix")
    assert body.split("\n")[0] == "Beta & Co now shows offline in the widget until someone says back."
    assert html.startswith("<strong>Beta &amp; Co now shows offline")

    body, html = render(DeskHelp("!sitechat open — …\n!sitechat help — this list", "There is no !sitechat <x>."), "m")
    assert body == "There is no !sitechat <x>.\n!sitechat open — …\n!sitechat help — this list"
    assert (
        html == "<strong>There is no !sitechat &lt;x&gt;.</strong><br>!sitechat open — …<br>!sitechat help — this list"
    )


def test_the_answer_is_a_notice_replying_to_the_command_that_pings_nobody() -> None:
    content = answer_content("Acme: online", "Acme: online", "$cmd")
    assert content == {
        "msgtype": "m.notice",
        "body": "Acme: online",
        "format": "org.matrix.custom.html",
        "formatted_body": "Acme: online",
        "m.mentions": {},
        "m.relates_to": {"m.in_reply_to": {"event_id": "$cmd"}},
    }
    assert answer_txn("$cmd") == answer_txn("$cmd") != answer_txn("$other")


# -- who !invite names ------------------------------------------------------------------------------

IDS: dict[str, list[str]] = {
    "@bob:example.org": ["@bob:example.org"],
    "@bob:example.org, @carol.c:hs.example.org:8448 and @bob:example.org": [
        "@bob:example.org",
        "@carol.c:hs.example.org:8448",
    ],
    "Bob": [],
    "@bob": [],
}


@pytest.mark.parametrize(("text", "ids"), IDS.items())
def test_user_ids(text: str, ids: list[str]) -> None:
    assert user_ids(text) == ids


PILL = '<a href="https://matrix.to/#/@bob:example.org">Bob</a>'
ENCODED_PILL = '<a href="https://matrix.to/#/%40bob%3Aexample.org">Bob</a>'
INVITES: list[tuple[str, dict[str, Any], str]] = [
    ("!invite Bob", {"formatted_body": f"!invite {PILL}"}, "!invite @bob:example.org"),
    (
        "!invite Bob",
        {"formatted_body": f"!invite {ENCODED_PILL}"},
        "!invite @bob:example.org",
    ),
    ("!invite @bob:example.org", {}, "!invite @bob:example.org"),
    ("!invite Bob", {"formatted_body": '!invite <a href="https://matrix.to/#/!room:example.org">x</a>'}, "!invite Bob"),
    ("Ask Bob", {"formatted_body": f"Ask {PILL}"}, "Ask Bob"),  # a reply for the visitor stays as it is
]


@pytest.mark.parametrize(("text", "content", "read"), INVITES)
def test_invite_text_takes_the_ids_of_pills(text: str, content: dict[str, Any], read: str) -> None:
    assert invite_text(text, content) == read


def test_the_invitation_mentions_exactly_the_people_invited() -> None:
    content = invitation_content([("@bob:example.org", "Bob <Eng>"), ("@c:example.org", "@c:example.org")], "Alice")
    assert content == {
        "msgtype": "m.text",  # a notice would notify nobody (.m.rule.suppress_notices)
        "body": "@bob:example.org @c:example.org Alice asks you to join this chat.",
        "format": "org.matrix.custom.html",
        "formatted_body": '<a href="https://matrix.to/#/@bob:example.org">Bob &lt;Eng&gt;</a> '
        '<a href="https://matrix.to/#/@c:example.org">@c:example.org</a> Alice asks you to join this chat.',
        "m.mentions": {"user_ids": ["@bob:example.org", "@c:example.org"]},
    }
    assert user_link("@a/b:example.org") == "https://matrix.to/#/@a%2Fb:example.org"


# -- when a reminder may say @room ----------------------------------------------------------------

BOT = "@sitechat:example.org"


def _create(version: str, sender: str = "@admin:example.org", **content: Any) -> dict[str, Any]:
    body = {"room_version": version, **content}
    return {"type": "m.room.create", "state_key": "", "sender": sender, "content": body}


def _levels(**content: Any) -> dict[str, Any]:
    return {"type": "m.room.power_levels", "state_key": "", "sender": "@admin:example.org", "content": content}


V10, V12 = _create("10", creator="@admin:example.org"), _create("12")
POWER: list[tuple[list[dict[str, Any]], bool]] = [
    ([V10, _levels()], False),  # users_default 0 < the default 50
    ([V10, _levels(users={BOT: 50})], True),
    ([V10, _levels(users={BOT: 100}, notifications={"room": 100})], True),
    ([V10, _levels(users={BOT: 99}, notifications={"room": 100})], False),
    ([V10, _levels(users_default=50)], True),
    ([V10, _levels(users={"@other:example.org": 100})], False),
    ([V10, _levels(users={BOT: 0}, notifications={"room": 0})], True),
    ([V10, _levels(users={BOT: "50"}, notifications={"room": "50"})], True),  # an old room's levels as strings
    ([V10, _levels(users={BOT: "lots"})], False),
    ([V10, _levels(users=["not", "a", "map"], notifications="nor this")], False),
    # room version 12: the creators stand above every level (and are not listed); others as ever
    ([_create("12", sender=BOT), _levels(notifications={"room": 100})], True),
    ([_create("12", additional_creators=[BOT]), _levels()], True),
    ([V12, _levels()], False),
    ([V12, _levels(users={BOT: 50})], True),
    ([_create("10", sender=BOT, creator=BOT), _levels()], False),  # before 12, a creator has what is listed
    # no power levels at all: the creator has 100, everyone else 0
    ([_create("10", sender=BOT, creator=BOT)], True),
    ([V10], False),
    ([], False),
]


@pytest.mark.parametrize(("state", "allowed"), POWER)
def test_room_mention_allowed(state: list[dict[str, Any]], allowed: bool) -> None:
    assert room_mention_allowed(state, BOT) is allowed


def test_a_reminder_that_calls_the_room() -> None:
    notice = notice_content("Ann has waited 2 min for an answer")
    assert with_room_mention(notice) == {
        "msgtype": "m.text",
        "body": "@room Ann has waited 2 min for an answer",
        "m.mentions": {"room": True},
    }
    assert notice["m.mentions"] == {} and notice["msgtype"] == "m.notice"  # the quiet one is left as it was
    assert [m for m in ("here", "channel", "U0123", "S0TEAM", "none", " None ") if reminder_mentions_room(m)] == [
        "here",
        "channel",
        "U0123",
        "S0TEAM",
    ]
