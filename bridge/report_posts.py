"""The report's picture into each site's Slack channel and Matrix room (CONTRACT §9), through the outbox:
an outage of a team chat delays the post, never loses or doubles it.

The picture is kept as a file (origin ``report``); each destination gets a ``FilePost`` delivery on a
lane of its own that is no conversation's (``posted-…``). A scheduled report is posted once across every
instance: the first to write its key (``report:{site}:{moment}``) posts it, the others find it taken.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from bridge.files import Files
from bridge.outbound import FilePost
from bridge.store import attachments, sync_state
from bridge.store.erasure import POSTS_PREFIX
from bridge.work import Work


def once_key(site_id: str, moment: datetime) -> str:
    """The key a scheduled report of ``site_id`` at ``moment`` is posted under, once."""
    return f"report:{site_id}:{moment:%Y-%m-%dT%H:%M}"


async def already_posted(files: Files, key: str) -> bool:
    async with files.db.read() as conn:
        return await sync_state.get_state(conn, key) is not None


async def post_report(
    files: Files,
    destinations: Mapping[str, str],
    picture: bytes,
    *,
    name: str,
    text: str,
    now: datetime,
    key: str | None = None,
) -> bool:
    """Queue the picture for each ``destinations`` (endpoint → channel or room); False when ``key`` was
    posted already (by this instance or another), and nothing is queued then."""
    if not destinations:
        return False
    stored = await files.save(_once(picture), name=name, origin="report", any_type=True)
    lane = POSTS_PREFIX + secrets.token_hex(8)
    try:
        async with files.db.write() as conn:
            if key is not None:
                # the insert fails when another instance wrote the key first: this one posts nothing
                await sync_state.insert_state(conn, key, lane, now)
            work = Work(conn, now)
            for endpoint, destination in destinations.items():
                await work.enqueue(lane, endpoint, FilePost(stored, text), address=(destination, None))
    except IntegrityError:
        async with files.db.write() as conn:
            await attachments.discard(conn, [stored.id])
        return False
    return True


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
