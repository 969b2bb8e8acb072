"""Telling the site's own systems: a closed or rated conversation becomes a webhook delivery, queued in
the same transaction as the close or the rating, with the export row as it is at that moment (so every
retry sends the same body)."""

from __future__ import annotations

import uuid

from bridge.outbound import WebhookEvent
from bridge.store import conversations as q
from bridge.store.export_rows import export_row
from bridge.work import Core, Work

#: the endpoint that POSTs them (``adapters/webhook``), on when ``SITECHAT_WEBHOOK_URL`` is set
WEBHOOK = "webhook"
CLOSED = "conversation.closed"
RATED = "conversation.rated"


async def tell(core: Core, work: Work, cid: str, event: str) -> None:
    """Queue ``event`` about the conversation for the webhook, when there is one."""
    if WEBHOOK not in core.endpoints:
        return
    conv = await q.get_conversation(work.conn, cid)
    if conv is None:
        return
    row = await export_row(work.conn, cid, site_name=core.site_name(conv.site_id))
    await work.enqueue(cid, WEBHOOK, WebhookEvent(event, row, uuid.uuid4().hex))
