"""One conversation as a row of CONTRACT §9's export, read on its own: the webhook's body, computed in
the transaction that closed or rated it.

Every column is defined once, by ``bridge.store.export.row_of`` (what ``sitechat export`` streams);
this reads one conversation's parts and hands them to it, so the webhook and the export never differ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store import conversations as q
from bridge.store.export import COLUMNS, row_of
from bridge.store.stats import first_response_of

__all__ = ["COLUMNS", "export_row"]


async def export_row(conn: AsyncConnection, cid: str, *, site_name: str | None = None) -> dict[str, Any]:
    """The conversation ``cid`` as an export row in JSON values (KeyError when there is none);
    ``site_name`` heads the transcript (the site's id when not given)."""
    conv = await q.get_conversation(conn, cid)
    if conv is None:
        raise KeyError(cid)
    messages = await q.messages_after(conn, cid, 0, limit=1_000_000)
    first = await first_response_of(conn, cid)
    row = row_of(conv, messages, first.seconds if first else None, site_name or conv.site_id)
    return row.as_json()
