"""Returning visitors (CONTRACT §8): the line the thread's root shows about the visitor's earlier chats on the
site — "Returning visitor: 3 earlier chats, last rated 4/5" — beside a link to the last one's thread, which
each team chat makes its own way (a Slack permalink, a matrix.to link). Pure.

The widget keeps a random key per site in the browser's storage and sends it as ``visitor.key`` with a new
conversation; a verified ``identify()`` id wins over it (``bridge/store/returning.py``). What the root
shows is found once, when the chat starts, and kept with the conversation (``Conversation.returning``),
so every update of the root shows the same.
"""

from __future__ import annotations

from bridge.model import Returning

LABEL = "Returning visitor"


def returning_summary(returning: Returning) -> str:
    """``3 earlier chats, last rated 4/5``; ``1 earlier chat``."""
    chats = f"{returning.earlier} earlier chat{'s' if returning.earlier != 1 else ''}"
    rated = f", last rated {returning.last_rating}/5" if returning.last_rating is not None else ""
    return chats + rated


def returning_line(returning: Returning) -> str:
    """``Returning visitor: 3 earlier chats, last rated 4/5``."""
    return f"{LABEL}: {returning_summary(returning)}"
