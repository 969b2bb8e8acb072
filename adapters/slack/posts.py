"""How pending deliveries become Slack posts: which go out together, and how long texts are cut. Pure.

Slack recommends at most 4,000 characters of ``text`` per message and silently keeps only the first
40,000, so every post's text — as Slack receives it, escaped — stays within ``MAX_POST_CHARS``. Lines
of one author that waited behind the rate limit share a post as far as they fit; a text too long for
one post goes out as numbered parts, each carrying its part number in the metadata, so that after a
crash the parts already in Slack are found and only the rest is posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.slack.events import thread_ref
from adapters.slack.format import escape, line_mrkdwn
from bridge.endpoint import Outgoing, Sent
from bridge.model import Message, RemoteId, Role, ThreadRef
from bridge.outbound import Line, Notice, OpenThread, RootState, Transcript

MAX_POST_CHARS = 4000

# what escaping adds per character (``&`` → ``&amp;``, ``<`` → ``&lt;``, ``>`` → ``&gt;``)
_EXTRA = {"&": 4, "<": 3, ">": 3}


@dataclass(frozen=True)
class Post:
    """One ``chat.postMessage``: the deliveries it carries, its part number, its escaped text."""

    ids: tuple[int, ...]
    part: int
    text: str


def escaped_length(text: str) -> int:
    """``len(escape(text))`` without building it."""
    return len(text) + sum(_EXTRA.get(ch, 0) for ch in text if ch in "&<>")


def split_escaped(text: str, limit: int = MAX_POST_CHARS) -> list[str]:
    """``text`` in pieces whose escaped forms fit ``limit``; joined, the pieces are ``text`` again.

    A piece ends after a line break in the second half of its room if there is one (a post boundary
    reads like one), else after a space there, else where the room ends. Cutting the plain text, not
    the escaped one, never splits an ``&amp;`` in two.
    """
    pieces: list[str] = []
    start = 0
    while start < len(text):
        room, end = limit, start
        while end < len(text) and (cost := 1 + _EXTRA.get(text[end], 0)) <= room:
            room -= cost
            end += 1
        end = max(end, start + 1)  # a limit below one escaped character would never end
        if end < len(text):
            window = text[start:end]
            half = len(window) // 2
            cut = window.rfind("\n") + 1
            if cut <= half:
                cut = max(window.rfind(" "), window.rfind("\t")) + 1
            if cut > half:
                end = start + cut
        pieces.append(text[start:end])
        start = end
    return pieces or [""]


def line_posts(lines: Sequence[tuple[int, str]], limit: int = MAX_POST_CHARS) -> list[Post]:
    """Lines of one author, ``(delivery id, plain text)`` in order, as posts.

    As many whole lines per post as fit, one per line of the post; a line too long for a post alone
    goes out alone, in parts numbered from 0.
    """
    posts: list[Post] = []
    ids: list[int] = []
    texts: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if ids:
            posts.append(Post(tuple(ids), 0, "\n".join(texts)))
            ids.clear()
            texts.clear()
            size = 0

    for did, text in lines:
        escaped = escape(text)
        if len(escaped) > limit:
            flush()
            posts.extend(text_posts(did, text, limit))
            continue
        if ids and size + 1 + len(escaped) > limit:
            flush()
        size += (1 if ids else 0) + len(escaped)
        ids.append(did)
        texts.append(escaped)
    flush()
    return posts


def text_posts(delivery_id: int, text: str, limit: int = MAX_POST_CHARS) -> list[Post]:
    """One delivery's text (a transcript, a notice, a long line) as its numbered parts."""
    return [Post((delivery_id,), part, escape(piece)) for part, piece in enumerate(split_escaped(text, limit))]


def formatted_line(message: Message) -> str | None:
    """A formatted line (a Matrix staff member's, CONTRACT §7) as the mrkdwn of one post; None when it has
    no formatting or would not fit one post (then it goes as plain text, split like any)."""
    if not message.html:
        return None
    text = line_mrkdwn(message.text, message.html)
    return text if len(text) <= MAX_POST_CHARS else None


def part_count(item: Outgoing) -> int:
    """How many posts the delivery takes on its own (a line that shares a post takes that one)."""
    match item.what:
        case Line(message):
            return 1 if formatted_line(message) is not None else len(split_escaped(message.text))
        case Transcript(text) | Notice(text):
            return len(split_escaped(text))
        case _:
            return 1


def groups(batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
    """Consecutive lines by the same visitor go out together; root updates into one update.

    An agent's line (from the other team chat) always has a post of its own: an edit or a deletion of it
    then changes just that post, never the lines that would have shared it. So has a line with files
    (they go up as one share, with the line as their comment).

    A delivery in doubt stays alone: it was looked for in Slack, and what of it is there already
    (some parts of a long text) decides what is left to post.
    """
    result: list[list[Outgoing]] = []
    for item in batch:
        last = result[-1][-1] if result else None
        same_author = (
            last is not None
            and isinstance(item.what, Line)
            and isinstance(last.what, Line)
            and item.what.message.author == last.what.message.author
            and item.what.message.author.role is not Role.AGENT
            and not item.what.message.attachments  # a line with files is one share of its own
            and not last.what.message.attachments
            and not item.maybe_sent
            and not last.maybe_sent
        )
        both_root = last is not None and isinstance(item.what, RootState) and isinstance(last.what, RootState)
        if same_author or both_root:
            result[-1].append(item)
        else:
            result.append([item])
    return result


def fit_escaped(text: str, limit: int = MAX_POST_CHARS) -> str:
    """``text`` escaped for one post: cut, and marked with an ellipsis, where it would not fit.

    For what cannot be split over posts (an update of one post, a root's fallback text).
    """
    pieces = split_escaped(text, limit)
    return escape(pieces[0]) if len(pieces) == 1 else escape(split_escaped(text, limit - 1)[0]) + "…"


def sent_for(group: Sequence[Outgoing], channel: str, ts: str, earlier: Sequence[str] = ()) -> list[Sent]:
    """What ``group`` became: the post ``ts`` (after the ``earlier`` parts of a long text); a root (posted now
    or found after a crash) is the thread."""
    ref = thread_ref(channel, ts)
    more = tuple(RemoteId(thread_ref(channel, part)) for part in earlier)
    return [
        Sent(o.delivery_id, RemoteId(ref), ThreadRef(ref) if isinstance(o.what, OpenThread) else None, more)
        for o in group
    ]
