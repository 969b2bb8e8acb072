"""The thread's root message: the visitor's context in Block Kit, with Claim/Close buttons. Pure."""

from __future__ import annotations

from typing import Any

from adapters.slack.format import escape
from adapters.slack.posts import fit_escaped
from bridge.model import Conversation, Returning, Status
from bridge.returning import returning_line
from bridge.visitor_context import visitor_facts

CLAIM = "sitechat_claim"
CLOSE = "sitechat_close"
SECTION_LIMIT = 2900  # a section's text may hold 3,000 characters
FIELD_LIMIT = 1900  # a section field, 2,000
#: Slack refuses a message's blocks with msg_blocks_too_long at about 13,000 characters in all
BLOCKS_TEXT_BUDGET = 12_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def root_text(conv: Conversation, site_name: str) -> str:
    """The notification and fallback text."""
    who = conv.visitor_name + (f" ({conv.visitor.email})" if conv.visitor.email else "")
    kind = "Offline message" if conv.kind == "offline" else "Chat"
    return fit_escaped(f"{kind} from {who} on {site_name} — {conv.state_label}")


def _plain(text: str) -> dict[str, Any]:
    """Visitor-supplied values go in plain_text: mrkdwn has no escape for * _ ~ `, plain_text formats nothing."""
    return {"type": "plain_text", "text": text, "emoji": False}


def root_blocks(
    conv: Conversation, site_name: str, topic_label: str | None, previous: str | None = None
) -> list[dict[str, Any]]:
    """``previous``: a link to the thread of the visitor's last chat (a returning visitor, CONTRACT §8)."""
    who = _cut(conv.visitor_name, 200)
    if conv.visitor.email:
        who += f"  {conv.visitor.email}"
    if conv.visitor.external_id:
        who += f"  (customer id {_cut(conv.visitor.external_id, 100)})"
    fields = [f"Site\n{site_name}"]
    if topic_label:
        fields.append(f"Topic\n{topic_label}")
    page = conv.current_page
    if page:
        title = f"{_cut(page.title, 150)}\n" if page.title else ""
        fields.append(f"Page\n{title}{_cut(page.url, 500)}")
    first = conv.pages[0] if conv.pages else None
    if first and first.referrer:
        fields.append(f"Came from\n{_cut(first.referrer, 500)}")
    where = " · ".join(x for x in (conv.locale, conv.timezone) if x)
    if where:
        fields.append(f"Locale\n{where}")
    fields.extend(f"{label}\n{value}" for label, value in visitor_facts(conv))
    kind = "Offline message" if conv.kind == "offline" else "New chat"
    # each field gets its share of what the budget leaves (a site name or topic label may be long too)
    field_limit = min(FIELD_LIMIT, (BLOCKS_TEXT_BUDGET - 3 * SECTION_LIMIT - 200) // max(1, len(fields[:10])))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _plain(_cut(f"{kind} from {who}", SECTION_LIMIT))},
        {"type": "section", "fields": [_plain(_cut(f, field_limit)) for f in fields[:10]]},
    ]
    if len(conv.pages) > 1:
        trail = "\n".join(f"• {_cut(p.title or p.url, 120)}" for p in conv.pages[-6:-1])
        blocks.append(
            {"type": "section", "text": _plain(_cut(f"Pages seen ({len(conv.pages)})\n{trail}", SECTION_LIMIT))}
        )
    if conv.returning is not None:
        blocks.append(returning_block(conv.returning, previous))
    blocks.append({"type": "context", "elements": [_plain(_cut(f"Status: {conv.state_label}", SECTION_LIMIT))]})
    if conv.status is Status.OPEN:
        buttons: list[dict[str, Any]] = []
        if not conv.claimed_by:
            buttons.append(_button("Claim", CLAIM, conv.id, style="primary"))
        buttons.append(_button("Close", CLOSE, conv.id, style="danger"))
        blocks.append({"type": "actions", "block_id": "sitechat_actions", "elements": buttons})
    return blocks


def returning_block(returning: Returning, previous: str | None) -> dict[str, Any]:
    """ "Returning visitor: 3 earlier chats, last rated 4/5 · last chat" (the bridge's own words: mrkdwn is safe)."""
    link = f" · <{escape(previous)}|last chat>" if previous else ""
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(returning_line(returning))}*{link}"}}


def text_length(blocks: list[dict[str, Any]]) -> int:
    """Characters of text in the blocks, as Slack counts them against ``msg_blocks_too_long``."""

    def count(value: Any) -> int:
        if isinstance(value, dict):
            return sum(len(v) if k == "text" and isinstance(v, str) else count(v) for k, v in value.items())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    return count(blocks)


def _button(label: str, action_id: str, value: str, *, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
        "style": style,
    }
