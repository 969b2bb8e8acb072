"""Self-tests of the fake Slack: the real slack-sdk / slack-bolt code runs against it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes import slack_payloads as sp
from tests.fakes.slack_api import DOWNLOAD, UPLOAD, FakeSlack

SUPPORT = "C0SUPPORT"
SALES = "C0SALES"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


@pytest_asyncio.fixture
async def client(slack: FakeSlack, session: aiohttp.ClientSession) -> AsyncWebClient:
    # One shared session, as the platform notes recommend for the product.
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=session)


def no_retry_client(slack: FakeSlack, session: aiohttp.ClientSession) -> AsyncWebClient:
    """A client without slack-sdk's default retry of connection errors, to see them raw."""
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=session, retry_handlers=[])


# ---------------------------------------------------------------------- Web API basics


async def test_auth_test_and_token_checks(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["user_id"] == "UBOT"
    assert answer["bot_id"] == "BBOT"
    assert answer["team_id"] == "T0TEAM"
    assert answer["is_enterprise_install"] is False
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "chat:write" in answer.headers["x-oauth-scopes"]

    with pytest.raises(SlackApiError) as bad_token:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert bad_token.value.response.status_code == 200
    assert bad_token.value.response["error"] == "invalid_auth"

    with pytest.raises(SlackApiError) as app_token_on_bot_method:
        await AsyncWebClient(token=slack.app_token, base_url=slack.api_url).auth_test()
    assert app_token_on_bot_method.value.response["error"] == "not_allowed_token_type"

    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("chat.frobnicate", json={"channel": SUPPORT})
    assert unknown.value.response["error"] == "unknown_method"


async def test_root_and_reply_with_metadata_come_back_in_order(slack: FakeSlack, client: AsyncWebClient) -> None:
    meta = {"event_type": "sitechat_delivery", "event_payload": {"delivery_id": "d-1"}}
    root = await client.chat_postMessage(
        channel=SUPPORT,
        text="New chat from Ann",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Ann* needs help"}}],
        metadata={"event_type": "sitechat_root", "event_payload": {"conversation": "c-1"}},
    )
    reply = await client.chat_postMessage(
        channel=SUPPORT,
        text="Hello &lt;there&gt;",
        thread_ts=root["ts"],
        username="Ann (visitor)",
        icon_url="https://example.org/ann.png",
        metadata=meta,
        unfurl_links=False,
        unfurl_media=False,
    )
    second = await client.chat_postMessage(channel=SUPPORT, text="second line", thread_ts=root["ts"])

    assert root["channel"] == SUPPORT
    assert float(root["ts"]) < float(reply["ts"]) < float(second["ts"])
    posted = reply["message"]
    assert posted["user"] == "UBOT" and posted["bot_id"] == "BBOT" and posted["app_id"] == "AAPP"
    assert posted["thread_ts"] == root["ts"]
    assert posted["username"] == "Ann (visitor)"
    assert posted["icons"] == {"image_48": "https://example.org/ann.png"}

    # slack-sdk sends chat.postMessage as a JSON body: booleans and metadata stay JSON.
    call = slack.calls_to("chat.postMessage")[1]
    assert call.encoding == "json"
    assert call.params["unfurl_links"] is False
    assert call.params["metadata"] == meta

    thread = await client.conversations_replies(channel=SUPPORT, ts=root["ts"], include_all_metadata=True)
    messages = thread["messages"]
    assert [m["ts"] for m in messages] == [root["ts"], reply["ts"], second["ts"]]
    assert messages[0]["reply_count"] == 2 and messages[0]["latest_reply"] == second["ts"]
    assert messages[1]["metadata"] == meta
    assert messages[0]["metadata"]["event_type"] == "sitechat_root"
    assert "metadata" not in messages[2]
    assert thread["has_more"] is False

    # Without include_all_metadata Slack leaves metadata out.
    bare = await client.conversations_replies(channel=SUPPORT, ts=root["ts"])
    assert all("metadata" not in m for m in bare["messages"])
    assert slack.calls_to("conversations.replies")[0].params["include_all_metadata"] == "1"

    # A reply's ts also finds the whole thread, root first.
    via_reply = await client.conversations_replies(channel=SUPPORT, ts=second["ts"])
    assert [m["ts"] for m in via_reply["messages"]] == [root["ts"], reply["ts"], second["ts"]]

    assert [m["ts"] for m in slack.thread(SUPPORT, root["ts"])] == [root["ts"], reply["ts"], second["ts"]]
    assert [m["text"] for m in slack.replies(SUPPORT, root["ts"])] == ["Hello &lt;there&gt;", "second line"]
    assert slack.message(SUPPORT, reply["ts"])["metadata"] == meta


async def test_replies_paging_and_oldest(slack: FakeSlack, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=SUPPORT, text="root")
    tss = [(await client.chat_postMessage(channel=SUPPORT, text=f"r{i}", thread_ts=root["ts"]))["ts"] for i in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await client.conversations_replies(channel=SUPPORT, ts=root["ts"], limit=2, cursor=cursor)
        seen.extend(m["ts"] for m in page["messages"])
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            assert cursor == ""
            break
    assert seen == [root["ts"], *tss]

    newer = await client.conversations_replies(channel=SUPPORT, ts=root["ts"], oldest=tss[2])
    assert [m["ts"] for m in newer["messages"]] == [root["ts"], tss[3], tss[4]]


async def test_history_paging_oldest_and_the_2025_page_cap(slack: FakeSlack, client: AsyncWebClient) -> None:
    tss = [(await client.chat_postMessage(channel=SUPPORT, text=f"m{i}"))["ts"] for i in range(40)]
    slack.cap_history_pages(15)  # the limit asks for more; Slack gives such apps 15 a page

    async def history(**kwargs: Any) -> list[list[str]]:
        pages, cursor = [], None
        while True:
            page = await client.conversations_history(channel=SUPPORT, limit=200, cursor=cursor, **kwargs)
            pages.append([m["ts"] for m in page["messages"]])
            cursor = page["response_metadata"]["next_cursor"]
            if not page["has_more"]:
                assert cursor == ""
                return pages

    pages = await history()
    assert [len(p) for p in pages] == [15, 15, 10]
    assert [ts for p in pages for ts in p] == tss[::-1]  # newest first, each once
    assert [ts for p in await history(oldest=tss[29]) for ts in p] == tss[:29:-1]  # oldest excluded
    assert [ts for p in await history(oldest=tss[29], inclusive=True) for ts in p] == tss[:28:-1]
    slack.cap_history_pages(None)
    assert len((await client.conversations_history(channel=SUPPORT, limit=200))["messages"]) == 40


async def test_post_message_errors_and_limits(slack: FakeSlack, client: AsyncWebClient) -> None:
    async def error_of(**kwargs: Any) -> str:
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(**kwargs)
        return str(info.value.response["error"])

    assert await error_of(channel="C0NOPE", text="x") == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):  # slack-sdk warns before sending
        assert await error_of(channel=SUPPORT) == "no_text"
    assert await error_of(channel=SUPPORT, text="x", thread_ts="1.000001") == "thread_not_found"
    too_many = [{"type": "section", "text": {"type": "plain_text", "text": "x"}}] * 51
    assert await error_of(channel=SUPPORT, text="x", blocks=too_many) == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert await error_of(channel=SUPPORT, text="x", blocks=long_section) == "invalid_blocks"
    assert await error_of(channel=SUPPORT, text="x", metadata={"event_type": "x"}) == "invalid_metadata_format"
    assert slack.messages(SUPPORT) == []

    long = await client.chat_postMessage(channel=SUPPORT, text="y" * 45_000)
    assert len(slack.message(SUPPORT, long["ts"])["text"]) == 40_000

    # A form-encoded call (blocks as a JSON string), the other way slack-sdk can send it.
    form = await client.api_call(
        "chat.postMessage",
        data={"channel": SALES, "text": "form", "blocks": json.dumps([{"type": "divider"}])},
    )
    assert slack.calls[-1].encoding == "form"
    assert slack.message(SALES, form["ts"])["blocks"] == [{"type": "divider"}]

    slack.add_channel("C0PRIVATE", "private", is_private=True, is_member=False)
    assert await error_of(channel="C0PRIVATE", text="x") == "not_in_channel"


async def test_chat_update_keeps_history(slack: FakeSlack, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=SUPPORT, text="Open")
    first = await client.chat_update(channel=SUPPORT, ts=root["ts"], text="Claimed by Alice")
    await client.chat_update(
        channel=SUPPORT,
        ts=root["ts"],
        text="Closed",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Closed"}}],
    )
    assert first["ts"] == root["ts"] and first["text"] == "Claimed by Alice"
    current = slack.message(SUPPORT, root["ts"])
    assert current["text"] == "Closed" and current["blocks"][0]["text"]["text"] == "Closed"
    assert "edited" in current
    assert [u["text"] for u in slack.updates_of(SUPPORT, root["ts"])] == ["Claimed by Alice", "Closed"]

    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=SUPPORT, ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"

    human = slack.add_message(SUPPORT, "UAGENT", "mine", thread_ts=root["ts"])
    with pytest.raises(SlackApiError) as foreign:
        await client.chat_update(channel=SUPPORT, ts=human["ts"], text="x")
    assert foreign.value.response["error"] == "cant_update_message"


async def test_delete_reactions_history_and_channels(slack: FakeSlack, client: AsyncWebClient) -> None:
    one = await client.chat_postMessage(channel=SUPPORT, text="one")
    reply = await client.chat_postMessage(channel=SUPPORT, text="in thread", thread_ts=one["ts"])
    two = await client.chat_postMessage(channel=SUPPORT, text="two")
    await client.reactions_add(channel=SUPPORT, name="eyes", timestamp=one["ts"])
    with pytest.raises(SlackApiError) as again:
        await client.reactions_add(channel=SUPPORT, name="eyes", timestamp=one["ts"])
    assert again.value.response["error"] == "already_reacted"

    history = await client.conversations_history(channel=SUPPORT, include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [two["ts"], one["ts"]]  # newest first, no replies
    assert history["messages"][1]["reactions"] == [{"name": "eyes", "users": ["UBOT"], "count": 1}]

    await client.chat_delete(channel=SUPPORT, ts=reply["ts"])
    assert [m["text"] for m in slack.messages(SUPPORT)] == ["one", "two"]
    assert slack.deleted[0]["text"] == "in thread"

    info = await client.conversations_info(channel=SALES)
    assert info["channel"]["id"] == SALES and info["channel"]["is_member"] is True
    joined = await client.conversations_join(channel=SALES)
    assert joined["warning"] == "already_in_channel"


async def test_users_info(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_user("UALICE", "alice", display_name="Alice", image_url="https://example.org/alice.png")
    slack.add_user("UBOB", "bob")
    alice = (await client.users_info(user="UALICE"))["user"]
    assert alice["id"] == "UALICE" and alice["name"] == "alice"
    assert alice["profile"]["display_name"] == "Alice"
    assert alice["profile"]["image_72"] == "https://example.org/alice.png"
    bob = (await client.users_info(user="UBOB"))["user"]
    assert bob["profile"]["display_name"] == ""  # as in Slack when unset: fall back to real_name
    assert bob["real_name"] == "bob"
    assert slack.calls_to("users.info")[0].params["user"] == "UALICE"
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="UNOPE")
    assert missing.value.response["error"] == "user_not_found"


# ---------------------------------------------------------------------- faults


async def test_429_fault_exposes_retry_after(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=2.0)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=SUPPORT, text="hello")
    response = info.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response["error"] == "ratelimited"
    assert slack.messages(SUPPORT) == []
    call = slack.calls_to("chat.postMessage")[0]
    assert (call.status, call.fault) == (429, "http_429")

    await client.chat_postMessage(channel=SUPPORT, text="hello")  # the fault was used up
    assert [m["text"] for m in slack.messages(SUPPORT)] == ["hello"]


async def test_error_and_html_faults(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", kind="error", error="channel_not_found")
    with pytest.raises(SlackApiError) as error:
        await client.chat_postMessage(channel=SUPPORT, text="x")
    assert error.value.response.status_code == 200
    assert error.value.response["error"] == "channel_not_found"

    slack.fail_next("chat.postMessage", kind="html", status=502)
    with pytest.raises(SlackApiError) as gateway:
        await client.chat_postMessage(channel=SUPPORT, text="x")
    # slack-sdk cannot parse the HTML page: an empty body, only the status tells.
    assert gateway.value.response.status_code == 502
    assert gateway.value.response.data == {}
    assert gateway.value.response.headers["Content-Type"].startswith("text/html")
    assert slack.messages(SUPPORT) == []


async def test_accept_then_drop_stores_but_the_client_sees_a_dropped_connection(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    slack.fail_next("chat.postMessage", kind="accept_then_drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await no_retry_client(slack, session).chat_postMessage(channel=SUPPORT, text="landed?")
    assert [m["text"] for m in slack.messages(SUPPORT)] == ["landed?"]
    assert slack.calls_to("chat.postMessage")[0].status == 0


async def test_default_client_retries_a_dropped_post_and_double_posts(slack: FakeSlack, client: AsyncWebClient) -> None:
    # slack-sdk's default AsyncConnectionErrorRetryHandler re-sends once after a dropped
    # connection: the caller sees success, Slack has the message twice.
    slack.fail_next("chat.postMessage", kind="accept_then_drop")
    answer = await client.chat_postMessage(channel=SUPPORT, text="twice")
    assert answer["ok"] is True
    assert [m["text"] for m in slack.messages(SUPPORT)] == ["twice", "twice"]


async def test_timeout_fault_holds_then_drops(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", kind="timeout", hold=30)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as short:
        impatient = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=short)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await impatient.chat_postMessage(channel=SUPPORT, text="x")
        assert time.monotonic() - started < 5
    assert slack.calls_to("chat.postMessage")[0].fault == "timeout"
    assert slack.messages(SUPPORT) == []


async def test_fail_for_window_and_rate_limit(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_for("conversations.history", seconds=30, retry_after=3)
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            await client.conversations_history(channel=SUPPORT)
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"] == "3"
    slack.clear_faults()
    await client.conversations_history(channel=SUPPORT)

    slack.rate_limit("chat.postMessage", per_second=0.5, burst=2)
    await client.chat_postMessage(channel=SUPPORT, text="1")
    await client.chat_postMessage(channel=SUPPORT, text="2")
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel=SUPPORT, text="3")
    assert limited.value.response.status_code == 429
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    await client.chat_postMessage(channel=SALES, text="other channel, own bucket")
    assert [m["text"] for m in slack.messages(SUPPORT)] == ["1", "2"]


async def test_random_faults_are_reproducible(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    client = no_retry_client(slack, session)

    async def pattern() -> list[str]:
        outcome: list[str] = []
        for i in range(20):
            try:
                await client.chat_postMessage(channel=SUPPORT, text=str(i))
                outcome.append("ok")
            except SlackApiError as exc:
                outcome.append(str(exc.response.status_code))
        return outcome

    slack.random_faults("chat.postMessage", rate=0.4, kinds=("500", "502_html"), seed=7)
    first = await pattern()
    slack.random_faults("chat.postMessage", rate=0.4, kinds=("500", "502_html"), seed=7)
    second = await pattern()
    assert first == second
    assert {"ok", "500", "502"} <= set(first)
    assert len(slack.messages(SUPPORT)) == 2 * first.count("ok")


# ---------------------------------------------------------------------- wait_for


async def test_wait_for_wakes_on_a_call_and_explains_a_timeout(slack: FakeSlack, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await client.chat_postMessage(channel=SUPPORT, text="arrived")

    task = asyncio.create_task(post_later())
    found = await slack.wait_for(lambda: slack.messages(SUPPORT), timeout=5, message="post in support")
    await task
    assert found[0]["text"] == "arrived"

    # An exception from the predicate means "not yet", and is reported on timeout.
    started = time.monotonic()
    with pytest.raises(AssertionError) as info:
        await slack.wait_for(lambda: slack.messages(SALES)[0], timeout=0.3, message="no post in sales")
    assert time.monotonic() - started < 2
    text = str(info.value)
    assert "no post in sales" in text
    assert "IndexError" in text
    assert "chat.postMessage" in text and "arrived" in text


# ---------------------------------------------------------------------- files


async def test_files_upload_v2_into_a_thread(slack: FakeSlack, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=SUPPORT, text="root")
    answer = await client.files_upload_v2(
        channel=SUPPORT,
        thread_ts=root["ts"],
        content="Ann: hello\nAlice: hi",
        filename="transcript.txt",
        title="Transcript",
        initial_comment="Full transcript",
    )
    assert answer["file"]["name"] == "transcript.txt"
    assert [c.method for c in slack.calls[-3:]] == [
        "files.getUploadURLExternal",
        UPLOAD,
        "files.completeUploadExternal",
    ]
    [record] = slack.files
    assert record.data == b"Ann: hello\nAlice: hi"
    assert (record.title, record.channel, record.thread_ts) == ("Transcript", SUPPORT, root["ts"])
    [share] = slack.replies(SUPPORT, root["ts"])
    assert share["text"] == "Full transcript" and share["files"][0]["id"] == record.id


#: Slack's Web API description (OpenAPI 2.0), beside the repository or vendored (as tests/test_deploy_files.py)
WEB_API_SPEC_PLACES = (
    Path(__file__).parent / "fakes" / "specs" / "slack_web_openapi_v2.json",
    Path(__file__).resolve().parents[2] / "shared" / "specs" / "slack_web_openapi_v2.json",
)


def _web_api_spec() -> dict[str, Any]:
    for place in WEB_API_SPEC_PLACES:
        if place.is_file():
            spec: dict[str, Any] = json.loads(place.read_text(encoding="utf-8"))
            return spec
    pytest.fail(f"Slack's Web API spec is needed at one of {[str(p) for p in WEB_API_SPEC_PLACES]}")


def _resolved(node: Any, spec: dict[str, Any], depth: int = 0) -> Any:
    """A schema with its ``#/definitions/…`` references replaced by what they name."""
    assert depth < 20, "a reference cycle"
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            return _resolved(spec["definitions"][node["$ref"].removeprefix("#/definitions/")], spec, depth + 1)
        return {k: _resolved(v, spec, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolved(v, spec, depth) for v in node]
    return node


#: the spec's schema for a file's ``shares`` allows no key at all, while its own files.info example has
#: ``public: {channel: [share…]}``: checked against the example's shape instead
SHARES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        scope: {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["ts", "channel_name", "team_id"],
                    "properties": {"ts": {"type": "string"}, "thread_ts": {"type": "string"}},
                },
            },
        }
        for scope in ("public", "private")
    },
}


def _check(instance: Any, schema: dict[str, Any]) -> None:
    spec = _web_api_spec()
    resolved = _resolved(schema, spec)
    file_schema = resolved.get("properties", {}).get("file") or resolved
    if "shares" in file_schema.get("properties", {}):
        file_schema["properties"]["shares"] = SHARES
    jsonschema.Draft4Validator(resolved).validate(instance)


def _answer_schema(method: str, verb: str) -> dict[str, Any]:
    schema: dict[str, Any] = _web_api_spec()["paths"][f"/{method}"][verb]["responses"]["200"]["schema"]
    return schema


def _error_schema(method: str, verb: str) -> dict[str, Any]:
    schema: dict[str, Any] = _web_api_spec()["paths"][f"/{method}"][verb]["responses"]["default"]["schema"]
    return schema


async def test_files_info_and_delete_answer_as_the_spec_says(slack: FakeSlack, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=SUPPORT, text="root")
    shared = await client.files_upload_v2(
        channel=SUPPORT, thread_ts=root["ts"], content=b"%PDF-1.4 x", filename="quote.pdf", initial_comment="hi"
    )
    # Slack shares asynchronously: the completion's answer has no shares; files.info has them
    assert "shares" not in shared["file"]
    file_id = shared["file"]["id"]
    [share] = slack.replies(SUPPORT, root["ts"])
    info = await client.files_info(file=file_id)
    _check(info.data, _answer_schema("files.info", "get"))
    assert info["file"]["shares"] == {
        "public": {
            SUPPORT: [
                {
                    "channel_name": SUPPORT.lower(),
                    "team_id": slack.team_id,
                    "share_user_id": slack.bot_user_id,
                    "ts": share["ts"],
                    "thread_ts": root["ts"],
                }
            ]
        }
    }
    _check(share["files"][0], _web_api_spec()["definitions"]["objs_file"])  # a message's file objects too

    answer = await client.files_delete(file=file_id)
    _check(answer.data, _answer_schema("files.delete", "post"))
    for method, verb in (("files.info", "get"), ("files.delete", "post")):
        with pytest.raises(SlackApiError) as refused:
            await client.api_call(method, http_verb=verb.upper(), params={"file": file_id})
        _check(refused.value.response.data, _error_schema(method, verb))
        assert refused.value.response["error"] == "file_deleted"
    assert slack.replies(SUPPORT, root["ts"])[0]["files"] == [{"id": file_id, "mode": "tombstone"}]


async def test_a_file_is_no_file_before_its_upload_is_completed(slack: FakeSlack, client: AsyncWebClient) -> None:
    pending = await client.files_getUploadURLExternal(filename="a.png", length=3)
    with pytest.raises(SlackApiError) as missing:
        await client.files_info(file=pending["file_id"])
    assert missing.value.response["error"] == "file_not_found"


async def test_url_private_serves_the_bot_token_only(
    slack: FakeSlack, client: AsyncWebClient, session: aiohttp.ClientSession
) -> None:
    root = await client.chat_postMessage(channel=SUPPORT, text="root")
    message = slack.share_file(SUPPORT, root["ts"], "UAGENT", "card.png", b"\x89PNG data", "see")
    assert message["subtype"] == "file_share" and message["thread_ts"] == root["ts"]
    _check(message["files"][0], _web_api_spec()["definitions"]["objs_file"])
    file = message["files"][0]
    assert file["url_private_download"].startswith(slack.base_url + "/files-pri/")
    for url in (file["url_private"], file["url_private_download"]):
        async with session.get(url, headers={"Authorization": f"Bearer {slack.bot_token}"}) as r:
            assert r.status == 200 and await r.read() == b"\x89PNG data"
        for headers in ({}, {"Authorization": "Bearer xoxb-someone-else"}):
            async with session.get(url, headers=headers, allow_redirects=False) as r:
                assert r.status == 302 and "redir=" in r.headers["Location"]
            async with session.get(url, headers=headers) as r:  # what a client that follows redirects keeps
                assert r.status == 200 and r.content_type == "text/html" and "Sign in" in await r.text()
    assert [c.token for c in slack.calls_to(DOWNLOAD)][:2] == [slack.bot_token, None]
    # only its owner may delete it
    with pytest.raises(SlackApiError) as refused:
        await client.files_delete(file=file["id"])
    assert refused.value.response["error"] == "cant_delete_file"


# ---------------------------------------------------------------------- signing and payloads


def test_signed_payloads_verify_with_slack_sdk() -> None:
    verifier = SignatureVerifier(SECRET)
    body, headers = sp.signed_json(SECRET, sp.event_callback(sp.message_event(SUPPORT, "UAGENT", "hi")))
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b" ", headers)

    form, form_headers = sp.signed_form(SECRET, sp.slash_command_form("/sitechat", "help", "UAGENT", SUPPORT))
    assert verifier.is_valid_request(form, form_headers)
    assert form_headers["Content-Type"] == "application/x-www-form-urlencoded"

    stale, stale_headers = sp.signed_json(SECRET, {"type": "x"}, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(stale, stale_headers)


async def test_bolt_routes_the_built_payloads(slack: FakeSlack, client: AsyncWebClient) -> None:
    app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)
    messages: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        messages.append(event)

    @app.action("claim")
    async def on_claim(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        actions.append(body)

    @app.command("/sitechat")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack("done")
        commands.append(command)

    async def send(body: bytes, headers: dict[str, str]) -> int:
        response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=dict(headers)))
        return response.status

    root = "1712000000.000100"
    own = sp.message_event(SUPPORT, "UBOT", "from the bridge", thread_ts=root, bot_id="BBOT", app_id="AAPP")
    assert await send(*sp.signed_json(SECRET, sp.event_callback(own))) == 200
    reply = sp.message_event(SUPPORT, "UAGENT", "agent reply", thread_ts=root)
    assert await send(*sp.signed_json(SECRET, sp.event_callback(reply))) == 200
    edit = sp.message_changed_event(SUPPORT, reply["ts"], "edited", "UAGENT", "agent reply", thread_ts=root)
    assert await send(*sp.signed_json(SECRET, sp.event_callback(edit))) == 200
    # The bot's own message was filtered by bolt (after a lazy auth.test); the rest arrived.
    assert [(m.get("subtype"), m.get("thread_ts")) for m in messages] == [(None, root), ("message_changed", None)]
    assert len(slack.calls_to("auth.test")) == 1

    click = sp.block_actions_payload("claim", "conv-1", "UAGENT", "alice", SUPPORT, root)
    assert await send(*sp.signed_form(SECRET, sp.interactive_form(click))) == 200
    assert actions[0]["actions"][0]["value"] == "conv-1"

    command = sp.slash_command_form("/sitechat", "status", "UAGENT", SUPPORT)
    assert await send(*sp.signed_form(SECRET, command)) == 200
    assert commands[0]["text"] == "status"

    body, headers = sp.signed_json("wrong-secret", sp.event_callback(reply))
    assert await send(body, headers) == 401


async def test_bolt_loses_a_slash_command_mentioning_payload(client: AsyncWebClient) -> None:
    # bolt 1.30 parses any form body containing "payload" as interactivity: the command is lost.
    app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)

    @app.command("/sitechat")
    async def on_command(ack: Any) -> None:
        await ack()

    body, headers = sp.signed_form(SECRET, sp.slash_command_form("/sitechat", "show payload", "UAGENT", SUPPORT))
    response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
    assert response.status == 404


# ---------------------------------------------------------------------- Socket Mode


async def test_socket_mode_client_receives_and_acks(slack: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    async def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    socket_client = SocketModeClient(
        app_token=slack.app_token,
        web_client=AsyncWebClient(token=slack.app_token, base_url=slack.api_url),
    )
    socket_client.socket_mode_request_listeners.append(listener)
    try:
        await socket_client.connect()
        await slack.wait_socket_connected(timeout=5)
        [opened] = slack.calls_to("apps.connections.open")
        assert opened.token == slack.app_token and opened.status == 200

        event = sp.event_callback(sp.message_event(SUPPORT, "UAGENT", "hi", thread_ts="1712000000.000100"))
        ack = await slack.send_socket_event(event, timeout=5)
        envelope = slack.socket_envelopes[-1]
        assert ack == {"envelope_id": envelope["envelope_id"]}
        assert envelope["type"] == "events_api" and envelope["retry_attempt"] == 0
        assert received[0].payload["event"]["text"] == "hi"
    finally:
        await socket_client.close()


async def test_bolt_socket_mode_handler_acks_events_and_commands(slack: FakeSlack, client: AsyncWebClient) -> None:
    app = AsyncApp(client=client)
    texts: list[str] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        texts.append(event["text"])

    @app.command("/sitechat")
    async def on_command(ack: Any) -> None:
        await ack({"text": "Closed."})

    handler = AsyncSocketModeHandler(app, slack.app_token)
    try:
        await handler.connect_async()
        event = sp.event_callback(sp.message_event(SUPPORT, "UAGENT", "over the socket", thread_ts="1.000100"))
        ack = await slack.send_socket_event(event, retry_attempt=1, retry_reason="timeout")
        assert ack["envelope_id"] == slack.socket_envelopes[-1]["envelope_id"]
        await slack.wait_for(lambda: texts == ["over the socket"], timeout=5, message="bolt listener ran")

        command = sp.slash_command_form("/sitechat", "close", "UAGENT", SUPPORT)
        answer = await slack.send_socket_event(dict(command), type="slash_commands")
        assert answer["payload"] == {"text": "Closed."}
        assert slack.socket_envelopes[-1]["accepts_response_payload"] is True

        # An event no listener matches gets no ack from bolt: the fake reports the timeout.
        with pytest.raises(TimeoutError):
            await slack.send_socket_event(sp.event_callback({"type": "reaction_added"}), timeout=0.3)
    finally:
        await handler.close_async()
