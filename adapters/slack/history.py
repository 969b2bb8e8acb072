"""After a crash or an unanswered post: which of our posts are in Slack already, by their metadata.

Slack has no idempotency key, so every post carries its delivery ids (and its part, for a text split
over several posts) in its message metadata; a delivery whose earlier attempt may have landed is
looked for in the thread (or, for a root, in the channel) before it is sent again — and only then:
history reads are scarce (since 2025 some apps get one a minute, 15 messages a page). A look reads
every page (a busy thread's post is rarely on the first), from a little before the delivery's own
time: nothing of it can be older.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import split_ref
from adapters.slack.posts import part_count
from bridge.endpoint import Outgoing
from bridge.outbound import Deletion, Edit, Erase, Line, OpenThread, RootState, WebhookEvent

METADATA_TYPE = "sitechat_delivery"
#: a look starts this long before the delivery's time: our clock and Slack's may differ a little
CLOCK_MARGIN = timedelta(minutes=1)
#: messages asked for per page; Slack may serve fewer, and says where to go on
PAGE_SIZE = 200

#: delivery id → part → ts of the post that holds it
Landed = dict[int, dict[int, str]]


def metadata(ids: Sequence[int], part: int) -> dict[str, Any]:
    """What a post carries so that ``find_landed`` recognises it later."""
    return {"event_type": METADATA_TYPE, "event_payload": {"delivery_ids": list(ids), "part": part}}


async def find_landed(client: AsyncWebClient, batch: Sequence[Outgoing]) -> Landed:
    """Of the deliveries an earlier attempt may have posted, the parts that are in Slack.

    One look per thread for the whole batch (not one per delivery), before anything is posted again.
    """
    places: dict[tuple[str, str | None], list[Outgoing]] = {}
    for item in batch:
        if not item.maybe_sent or isinstance(item.what, RootState | Edit | Deletion | Erase | WebhookEvent):
            continue  # an update or a removal may simply be made again (and a webhook is not Slack's)
        thread_ts = split_ref(item.thread)[1] if item.thread else None
        if thread_ts is None and not isinstance(item.what, OpenThread):
            continue  # no thread yet: it cannot have been posted
        places.setdefault((item.destination, thread_ts), []).append(item)
    landed: Landed = {}
    for (channel, thread_ts), items in places.items():
        since = min(not_before(item) for item in items) - CLOCK_MARGIN
        wanted = {item.delivery_id: part_count(item) for item in items}
        landed.update(await _find_posted(client, channel, thread_ts, wanted, since))
    return landed


def not_before(item: Outgoing) -> datetime:
    """No post of ``item`` can be older: a line is posted after it was written, the rest after the
    conversation began (what else the outbox knows — the first attempt — the endpoint is not told)."""
    if isinstance(item.what, Line):
        return item.what.message.created_at
    return item.conversation.created_at


def slack_ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


async def _find_posted(
    client: AsyncWebClient, channel: str, thread_ts: str | None, wanted: dict[int, int], since: datetime
) -> Landed:
    """Our posts carrying the ``wanted`` delivery ids (id → how many parts), in the thread (``thread_ts``)
    or among the channel's top-level messages (a root), from ``since`` on; page after page until every
    part is found or no page is left."""
    found: Landed = {}
    cursor: str | None = None
    while True:
        if thread_ts is None:
            response = await client.conversations_history(
                channel=channel, oldest=slack_ts(since), limit=PAGE_SIZE, cursor=cursor, include_all_metadata=True
            )
        else:
            response = await client.conversations_replies(
                channel=channel,
                ts=thread_ts,
                oldest=slack_ts(since),
                limit=PAGE_SIZE,
                cursor=cursor,
                include_all_metadata=True,
            )
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") != METADATA_TYPE:
                continue
            for did in wanted.keys() & set(payload.get("delivery_ids") or ()):
                found.setdefault(did, {}).setdefault(int(payload.get("part", 0)), str(message["ts"]))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None or all(len(found.get(did, ())) >= parts for did, parts in wanted.items()):
            return found
