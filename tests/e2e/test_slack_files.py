"""Files with Slack (CONTRACT §7), end to end: a visitor's file goes up as a real file into the thread
(files.getUploadURLExternal, the bytes, files.completeUploadExternal), an agent's shared file reaches the
widget through the bridge's own signed link (fetched with the bot token, which never leaves the bridge),
notes keep their files, a retry never shares a file twice, and an erasure deletes the file in Slack."""

from __future__ import annotations

import json
from typing import Any

from bridge.retention import forget
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import DOWNLOAD, UPLOAD, FakeSlack
from tests.harness import RunningBridge, SlackAgent, Visitor, root_of, visitor_and_agent, wait_until
from tests.images import png

CHANNEL = "C0SUPPORT"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def _thread(visitor: Visitor, slack: FakeSlack) -> str:
    await visitor.start(name="Ann", email="ann@example.com")
    root = await slack.wait_for(lambda: root_of(slack), message="the thread root")
    assert root is not None
    return str(root["ts"])


def _shares(slack: FakeSlack, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.replies(CHANNEL, thread_ts) if m.get("files")]


async def test_a_visitors_file_is_a_real_file_in_the_thread_with_their_words(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor
) -> None:
    thread_ts = await _thread(visitor, fake_slack)
    image = png(4, 3)
    await visitor.send_file(image, "shot.png", "look <!channel> & see")
    [share] = await fake_slack.wait_for(lambda: _shares(fake_slack, thread_ts), message="the file in the thread")

    [record] = fake_slack.files
    assert record.data == image and record.name == "shot.png"
    assert (record.channel, record.thread_ts, record.message_ts) == (CHANNEL, thread_ts, share["ts"])
    # the visitor's words are the comment, escaped like every line of theirs: no @channel
    assert share["text"] == "Ann: look &lt;!channel&gt; &amp; see"
    assert share["files"][0]["id"] == record.id
    await slack_bridge.wait_idle()
    methods = [c.method for c in fake_slack.calls if c.method.startswith("files.")]
    assert methods == ["files.getUploadURLExternal", UPLOAD, "files.completeUploadExternal", "files.info"]
    # a file alone goes up too, with who sent it as its comment
    await visitor.send_file(png(), "second.png", "")
    await fake_slack.wait_for(lambda: len(_shares(fake_slack, thread_ts)) == 2, message="the second file")
    assert _shares(fake_slack, thread_ts)[1]["text"] == "Ann sent a file"


async def test_an_agents_file_reaches_the_widget_through_the_bridge_only(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    thread_ts = await _thread(visitor, fake_slack)
    live = await visitor.socket()
    status, _ = await agent.share(CHANNEL, thread_ts, "quote.pdf", PDF, "here is your quote")
    assert status == 200

    frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
    message = frame["message"]
    assert message["text"] == "here is your quote"
    [file] = message["attachments"]
    assert (file["name"], file["size"], file["content_type"]) == ("quote.pdf", len(PDF), "application/pdf")
    listed = [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
    assert [a["id"] for a in listed[0]["attachments"]] == [file["id"]]
    for url in (file["url"], listed[0]["attachments"][0]["url"]):
        assert url.startswith(f"{slack_bridge.url}/api/v1/attachments/{file['id']}?exp=")
        status, data, headers = await visitor.download(url)
        assert status == 200 and data == PDF
        assert headers["Content-Disposition"].startswith("attachment")
    # the bridge fetched it with the bot token; the visitor never sees Slack's address or the token
    [fetch] = fake_slack.calls_to(DOWNLOAD)
    assert fetch.token == fake_slack.bot_token and fetch.status == 200
    seen = json.dumps([frame, await visitor.messages()])
    assert "xoxb" not in seen and fake_slack.base_url not in seen and "files-pri" not in seen
    await live.close()


async def test_a_notes_file_stays_in_slack(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    thread_ts = await _thread(visitor, fake_slack)
    status, _ = await agent.share(CHANNEL, thread_ts, "card.png", png(), "// their card, internal")
    assert status == 200
    await agent.reply(CHANNEL, thread_ts, "All sorted.")
    await wait_until(lambda: _agent_texts(visitor), what="the public reply")
    assert await _agent_texts(visitor) == ["All sorted."]
    assert fake_slack.calls_to(DOWNLOAD) == []  # never even fetched


async def _agent_texts(visitor: Visitor) -> list[str]:
    return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def test_a_file_not_passed_on_is_told_to_the_thread_and_the_words_still_go(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, upload_max_mb=0.25)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        thread_ts = await _thread(visitor, fake_slack)
        await agent.share(CHANNEL, thread_ts, "big.bin", b"\x00" * 300_000, "the full log")
        # beyond a free workspace's limit: Slack lets nobody fetch it
        await agent.share(CHANNEL, thread_ts, "old.png", png(), "", mode="hidden_by_limit")
        await wait_until(lambda: _agent_texts(visitor), what="the words")
        [relayed] = [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
        assert relayed["text"] == "the full log" and not relayed.get("attachments")

        def notices() -> list[str]:
            return [m["text"] for m in fake_slack.replies(CHANNEL, thread_ts) if "Not passed on" in m["text"]]

        told = await fake_slack.wait_for(lambda: len(notices()) == 2 and notices(), message="the two notices")
        assert "big.bin" in told[0] and "MB" in told[0]
        assert "old.png" in told[1]
        # the one too large was refused as it came (Slack said its size): not one byte fetched
        assert fake_slack.calls_to(DOWNLOAD) == []


async def test_a_lost_answer_in_the_middle_of_an_upload_never_shares_a_file_twice(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor
) -> None:
    thread_ts = await _thread(visitor, fake_slack)
    # Slack shares the file, then the connection drops before its answer: the bridge cannot know
    fake_slack.fail_next("files.completeUploadExternal", kind="accept_then_drop")
    await visitor.send_file(png(), "one.png", "first")
    await slack_bridge.wait_idle(timeout=20)
    assert len(_shares(fake_slack, thread_ts)) == 1
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == 1  # the retry asked files.info instead

    # the bytes land, the answer is lost: that file was never shared, so the retry uploads again, once
    fake_slack.fail_next(UPLOAD, kind="accept_then_drop")
    await visitor.send_file(png(3, 3), "two.png", "second")
    await slack_bridge.wait_idle(timeout=20)
    shares = _shares(fake_slack, thread_ts)
    assert [s["text"] for s in shares] == ["Ann: first", "Ann: second"]
    assert [f.name for f in fake_slack.files] == ["one.png", "two.png"]

    # Slack's rate limit on sharing: waited out, then shared once
    fake_slack.fail_next("files.completeUploadExternal", status=429, retry_after=1)
    await visitor.send_file(png(2, 5), "three.png", "third")
    await slack_bridge.wait_idle(timeout=20)
    assert [s["text"] for s in _shares(fake_slack, thread_ts)] == ["Ann: first", "Ann: second", "Ann: third"]


async def test_the_transcript_names_the_files_and_an_erasure_deletes_them_in_slack(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    assert slack_bridge.runtime is not None
    thread_ts = await _thread(visitor, fake_slack)
    await visitor.send_file(png(), "shot.png", "look")
    await agent.share(CHANNEL, thread_ts, "quote.pdf", PDF, "your quote")
    await wait_until(lambda: _agent_texts(visitor), what="the agent's file")
    await fake_slack.wait_for(lambda: _shares(fake_slack, thread_ts), message="the visitor's file in Slack")
    status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
    assert status == 200
    [transcript] = await fake_slack.wait_for(
        lambda: [m for m in fake_slack.replies(CHANNEL, thread_ts) if "Transcript" in m["text"]],
        message="the transcript",
    )
    assert "[file: shot.png" in transcript["text"] and "[file: quote.pdf" in transcript["text"]
    await slack_bridge.wait_idle()

    assert await forget(slack_bridge.runtime.db, "ann@example.com") == 1
    slack_bridge.runtime.worker.wake()
    ours, theirs = (next(f for f in fake_slack.files if f.name == name) for name in ("shot.png", "quote.pdf"))
    await fake_slack.wait_for(lambda: ours.deleted, timeout=15, message="the visitor's file deleted in Slack")
    await fake_slack.wait_for(
        lambda: {thread_ts, ours.message_ts} <= {d["ts"] for d in fake_slack.deleted},
        timeout=15,
        message="the file's message and the root deleted",
    )
    # the agent's own file and message are theirs: they stay
    assert not theirs.deleted
    assert [m["files"][0]["name"] for m in fake_slack.messages(CHANNEL)] == ["quote.pdf"]


async def test_a_share_without_its_urls_is_looked_up_with_files_info(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    """Over Socket Mode (and for big shares) the event's file object may lack its URLs."""
    thread_ts = await _thread(visitor, fake_slack)
    bare = {"url_private": None, "url_private_download": None, "file_access": "check_file_info"}
    await agent.share(CHANNEL, thread_ts, "notes.txt", b"order 1234\n", "", **bare)
    [message] = await wait_until(lambda: _agent_messages(visitor), what="the file")
    assert message["text"] == "" and message["attachments"][0]["name"] == "notes.txt"
    assert len(fake_slack.calls_to("files.info")) == 1 and len(fake_slack.calls_to(DOWNLOAD)) == 1


async def _agent_messages(visitor: Visitor) -> list[dict[str, Any]]:
    return [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def test_the_reports_picture_goes_into_the_channel_once(
    slack_bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    from datetime import UTC, datetime

    from bridge.report_posts import post_report

    assert slack_bridge.runtime is not None and slack_bridge.runtime.widget.files is not None
    fake_slack.fail_next("files.completeUploadExternal", kind="accept_then_drop")
    picture = png(8, 5)
    queued = await post_report(
        slack_bridge.runtime.widget.files,
        {"slack": CHANNEL},
        picture,
        name="report.png",
        text="Acme — 7 days <!here>",
        now=datetime.now(UTC),
    )
    assert queued
    slack_bridge.runtime.worker.wake()
    await slack_bridge.wait_idle(timeout=20)
    [post] = [m for m in fake_slack.messages(CHANNEL) if m.get("files")]
    assert post.get("thread_ts") is None and post["text"] == "Acme — 7 days &lt;!here&gt;"
    assert [f.data for f in fake_slack.files] == [picture]
