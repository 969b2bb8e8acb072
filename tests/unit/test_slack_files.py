"""``adapters/slack/uploads.py`` and ``downloads.py``, their pure parts: the files' comment, where Slack says a
file was shared, which files can be fetched, and where the bot token may go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.slack.downloads import download_url, file_label, trusted_host, unfetchable
from adapters.slack.posts import MAX_POST_CHARS
from adapters.slack.uploads import _Attempt, file_comment, file_ref, is_file_ref, share_ts
from bridge.model import Attachment, ConversationId, Message, Participant, Role

PNG = Attachment("a1", "shot.png", 10, "image/png")


def _message(text: str, name: str = "Ann", files: int = 1, html: str | None = None) -> Message:
    return Message(
        id="m1",
        conversation_id=ConversationId("c1"),
        seq=1,
        author=Participant(Role.VISITOR, name),
        text=text,
        created_at=datetime(2027, 1, 4, tzinfo=UTC),
        html=html,
        attachments=(PNG,) * files,
    )


COMMENTS: dict[str, tuple[Message, str | None]] = {
    "words": (_message("look"), "Ann: look"),
    "escaped, never a mention": (_message("<!channel> & <@U1>"), "Ann: &lt;!channel&gt; &amp; &lt;@U1&gt;"),
    "a name that could be markup": (_message("hi", name="<b>&Bob</b>"), "b &amp;Bob /b: hi"),
    "a file alone": (_message(""), "Ann sent a file"),
    "files alone": (_message("  ", files=2), "Ann sent files"),
    "a staff member's formatting": (_message("done", html="<p><strong>done</strong></p>"), "Ann: *done*"),
    "too long for a comment": (_message("x" * MAX_POST_CHARS), None),
}


@pytest.mark.parametrize(("message", "expected"), COMMENTS.values(), ids=list(COMMENTS))
def test_file_comment(message: Message, expected: str | None) -> None:
    assert file_comment(message) == expected


def _share(ts: str, thread_ts: str | None = None) -> dict[str, Any]:
    return {"ts": ts, "channel_name": "support", "team_id": "T0"} | ({"thread_ts": thread_ts} if thread_ts else {})


SHARES: dict[str, tuple[list[dict[str, Any]], str | None, str | None]] = {
    "in the thread": ([{"shares": {"public": {"C1": [_share("2.0", "1.0")]}}}], "1.0", "2.0"),
    "a private channel": ([{"shares": {"private": {"C1": [_share("2.0", "1.0")]}}}], "1.0", "2.0"),
    "not yet (Slack shares asynchronously)": ([{"id": "F1"}], "1.0", None),
    "another thread": ([{"shares": {"public": {"C1": [_share("2.0", "9.0")]}}}], "1.0", None),
    "another channel": ([{"shares": {"public": {"C2": [_share("2.0", "1.0")]}}}], "1.0", None),
    "the channel itself": ([{"shares": {"public": {"C1": [_share("3.0", "1.0"), _share("4.0")]}}}], None, "4.0"),
    "no files": ([], "1.0", None),
}


@pytest.mark.parametrize(("files", "thread_ts", "expected"), SHARES.values(), ids=list(SHARES))
def test_share_ts(files: list[dict[str, Any]], thread_ts: str | None, expected: str | None) -> None:
    assert share_ts(files, "C1", thread_ts) == expected


FETCHABLE: dict[str, tuple[dict[str, Any], bool, str | None]] = {
    "hosted": ({"mode": "hosted", "url_private": "u", "url_private_download": "d"}, True, "d"),
    "snippet": ({"mode": "snippet", "url_private": "u"}, True, "u"),
    "beyond the plan's limit": ({"mode": "hidden_by_limit", "id": "F1"}, False, None),
    "external (Google Drive)": ({"mode": "external", "is_external": True, "url_private": "u"}, False, "u"),
    "deleted": ({"mode": "tombstone", "id": "F1"}, False, None),
}


@pytest.mark.parametrize(("file", "fetchable", "url"), FETCHABLE.values(), ids=list(FETCHABLE))
def test_which_files_can_be_fetched(file: dict[str, Any], fetchable: bool, url: str | None) -> None:
    assert unfetchable(file) is not fetchable
    assert download_url(file) == url


def test_file_label_prefers_the_name() -> None:
    assert [file_label(f) for f in ({"name": "a.pdf", "title": "A"}, {"title": "A"}, {"id": "F1"}, {})] == [
        "a.pdf",
        "A",
        "F1",
        "a file",
    ]


FILE = "https://files.slack.com/files-pri/T0-F1/a.png"
HOSTS: dict[str, tuple[str, str, bool]] = {
    "Slack's file host": ("https://files.slack.com/files-pri/T0-F1/a.png", "https://slack.com/api/", True),
    "an enterprise API host": (
        "https://files.slack.com/files-pri/T0-F1/a.png",
        "https://acme.enterprise.slack.com/api/",
        True,
    ),
    "plain http": ("http://files.slack.com/files-pri/T0-F1/a.png", "https://slack.com/api/", False),
    "a look-alike": ("https://files.slack.com.evil.example/a.png", "https://slack.com/api/", False),
    "anywhere else": ("https://evil.example/a.png", "https://slack.com/api/", False),
    "the fake's own host": ("http://127.0.0.1:5000/files-pri/T0-F1/a.png", "http://127.0.0.1:5000/api/", True),
    "another port": ("http://127.0.0.1:5001/files-pri/T0-F1/a.png", "http://127.0.0.1:5000/api/", False),
    "Slack's host with a fake API": ("https://files.slack.com/a.png", "http://127.0.0.1:5000/api/", False),
}


@pytest.mark.parametrize(("url", "api_url", "trusted"), HOSTS.values(), ids=list(HOSTS))
def test_the_bot_token_goes_only_to_slacks_file_host(url: str, api_url: str, trusted: bool) -> None:
    assert trusted_host(url, api_url) is trusted


def test_file_refs_and_recorded_attempts() -> None:
    assert file_ref("F1") == "file:F1" and is_file_ref(file_ref("F1")) and not is_file_ref("C1:1.0")
    attempt = _Attempt(("F1", "F2"), 12.5)
    assert _Attempt.parse(attempt.dump()) == attempt
    for unreadable in (None, "", "[]", "{}", '{"files": []}', '{"files": ["F1"]}', "not json"):
        assert _Attempt.parse(unreadable) is None
