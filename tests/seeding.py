"""Conversations with known times, replies and ratings, written straight into a database (batched), for the
statistics, report and export tests, the export benchmark and the README's report picture."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import insert

from bridge.store.database import Database
from bridge.store.tables import conversation, message


@dataclass(frozen=True)
class Said:
    role: str  # visitor | agent | system
    name: str
    text: str
    at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class Seeded:
    id: str
    started_at: datetime
    site: str = "acme"
    topic: str | None = None
    visitor_name: str | None = "Ann"
    visitor_email: str | None = "ann@example.com"
    messages: tuple[Said, ...] = ()
    closed_at: datetime | None = None
    rating: int | None = None
    comment: str | None = None
    pages: tuple[str, ...] = ()
    kind: str = "chat"
    extra: dict[str, Any] = field(default_factory=dict)


def _rows(c: Seeded) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    last = max([c.started_at, *(m.at for m in c.messages), *([c.closed_at] if c.closed_at else [])])
    row = {
        "id": c.id,
        "site_id": c.site,
        "topic": c.topic,
        "status": "closed" if c.closed_at else "open",
        "kind": c.kind,
        "token_hash": hashlib.sha256(c.id.encode()).hexdigest(),
        "visitor_name": c.visitor_name,
        "visitor_email": c.visitor_email,
        "visitor_external_id": None,
        "locale": "en",
        "timezone": "Europe/Berlin",
        "client_address": "127.0.0.1",
        "pages": [{"url": url, "title": None, "referrer": None} for url in c.pages],
        "claimed_by": None,
        "last_seq": len(c.messages),
        "created_at": c.started_at,
        "last_activity_at": last,
        "awaiting_reply_since": None,
        "reminded_at": None,
        "closed_at": c.closed_at,
        "rating_score": c.rating,
        "rating_comment": c.comment,
        "rated_at": c.closed_at if c.rating is not None else None,
        **c.extra,
    }
    messages = [
        {
            "id": f"{c.id}-{seq}",
            "conversation_id": c.id,
            "seq": seq,
            "role": m.role,
            "author_name": m.name,
            "author_avatar_url": None,
            "author_remote_id": None,
            "text": "" if m.deleted else m.text,
            "client_msg_id": f"{c.id}-{seq}" if m.role == "visitor" else None,
            "origin": "widget" if m.role == "visitor" else "slack",
            "created_at": m.at,
            "edited_at": None,
            "deleted": m.deleted,
        }
        for seq, m in enumerate(c.messages, start=1)
    ]
    return row, messages


def _batches(items: Iterable[Seeded], size: int) -> Iterator[list[Seeded]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


async def seed(db: Database, conversations: Iterable[Seeded], *, batch: int = 2000) -> int:
    """Write the conversations (the schema must be there: ``db.migrate()``); how many were written."""
    written = 0
    for group in _batches(conversations, batch):
        rows = [_rows(c) for c in group]
        async with db.write() as conn:
            await conn.execute(insert(conversation), [r for r, _ in rows])
            messages = [m for _, ms in rows for m in ms]
            if messages:
                await conn.execute(insert(message), messages)
        written += len(group)
    return written


LOW_COMMENTS = (
    "Waited ages and then nobody answered my question",
    "The agent did not know the product",
    "Too slow, I gave up",
    "Answer was copy-paste",
)
GOOD_COMMENTS = ("Quick and friendly, thanks!", "Solved in two minutes", None, None, None)
NAMES = ("Ann", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas")
AGENTS = ("Alice", "Bob", "Carla")


def demo_conversations(start: datetime, days: int, *, per_weekday: int = 26, seed_value: int = 19) -> Iterator[Seeded]:
    """Chats like a small shop's, from ``start`` (a UTC midnight) for ``days``: busy office hours in
    Berlin on weekdays, a quiet weekend, first responses mostly within a minute, a few missed ones,
    ratings mostly good. Deterministic for a given ``seed_value``."""
    rng = random.Random(seed_value)
    n = 0
    for day in range(days):
        midnight = start + timedelta(days=day)
        weekend = midnight.weekday() >= 5
        count = rng.randint(per_weekday // 6, per_weekday // 3) if weekend else per_weekday + rng.randint(-5, 5)
        for _ in range(count):
            # Berlin office hours, 08–17 UTC in winter: a late-morning and an early-afternoon peak
            hour = rng.choice([6, 7, 8, 8, 9, 9, 9, 10, 10, 11, 12, 12, 13, 13, 14, 14, 15, 16, 17, 19])
            began = midnight + timedelta(hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
            n += 1
            yield _demo_chat(f"demo{n:07d}", began, rng)


def _demo_chat(cid: str, began: datetime, rng: random.Random) -> Seeded:
    name = rng.choice(NAMES)
    first = began + timedelta(seconds=rng.randint(3, 40))
    said = [Said("visitor", name, "Hi, I have a question about my order", first)]
    answered = rng.random() > 0.07
    if answered:
        wait = min(900.0, rng.lognormvariate(3.5, 0.8))  # median about 33 s
        agent = rng.choice(AGENTS)
        reply = first + timedelta(seconds=wait)
        said.append(Said("agent", agent, f"Hi {name}, I'm {agent}. Let me look that up.", reply))
        said.append(Said("visitor", name, "Thanks!", reply + timedelta(seconds=rng.randint(5, 60))))
        done = said[-1].at + timedelta(seconds=rng.randint(20, 240))
        said.append(Said("agent", agent, "Done: it ships tomorrow.", done))
    closed = said[-1].at + timedelta(minutes=rng.randint(1, 30))
    score: int | None = None
    comment: str | None = None
    if rng.random() < 0.55:
        score = rng.choices([1, 2, 3, 4, 5], weights=[3, 4, 8, 25, 60])[0] if answered else rng.choice([1, 2])
        if score <= 2:
            comment = rng.choice(LOW_COMMENTS) if rng.random() < 0.8 else None
        else:
            comment = rng.choice(GOOD_COMMENTS)
    return Seeded(
        cid,
        began,
        visitor_name=name,
        visitor_email=f"{name.lower()}@example.com",
        messages=tuple(said),
        closed_at=closed,
        rating=score,
        comment=comment,
        pages=("https://acme.example/", "https://acme.example/orders"),
    )
