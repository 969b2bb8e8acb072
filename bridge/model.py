"""The neutral model every endpoint speaks: conversations, participants, messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

ConversationId = NewType("ConversationId", str)
#: Where a conversation lives on one endpoint, opaque to the core (``C0123:1712.0001``, a Matrix event id).
ThreadRef = NewType("ThreadRef", str)
#: One message's id on one endpoint (Slack ``channel:ts``, Matrix event id).
RemoteId = NewType("RemoteId", str)
#: The name of an endpoint: ``slack``, ``matrix``, ``email``.
EndpointName = NewType("EndpointName", str)


#: the name a visitor who gave none goes by
ANONYMOUS = "Visitor"


class Role(StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"
    SYSTEM = "system"


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Participant:
    role: Role
    name: str
    avatar_url: str | None = None
    #: who this is on the endpoint it came from (``slack:U123``, ``matrix:@alice:example.org``)
    remote_id: str | None = None


@dataclass(frozen=True)
class Visitor:
    name: str | None = None
    email: str | None = None
    #: a verified ``Sitechat.identify()`` id: links the visitor's conversations
    external_id: str | None = None
    #: the widget's random key for this browser: links them when there is no verified id (CONTRACT §8)
    key: str | None = None


@dataclass(frozen=True)
class Returning:
    """The visitor's earlier chats on the site, as the root shows them (``bridge/returning.py``): how many,
    the last rating given, and where the last one's threads are."""

    earlier: int
    last_rating: int | None = None
    #: (endpoint, destination, thread) of each thread of the visitor's last chat
    last_threads: tuple[tuple[str, str, ThreadRef], ...] = ()

    def last_thread(self, endpoint: str) -> tuple[str, ThreadRef] | None:
        """The last chat's (destination, thread) on ``endpoint``, if it had one there."""
        return next(((d, t) for e, d, t in self.last_threads if e == endpoint), None)

    def stored(self) -> dict[str, object]:
        return {"earlier": self.earlier, "last_rating": self.last_rating, "last_threads": list(self.last_threads)}

    @classmethod
    def from_stored(cls, value: object) -> Returning | None:
        """As the store keeps it (a JSON object); anything unreadable is no earlier chat."""
        if not isinstance(value, dict) or not isinstance(value.get("earlier"), int) or value["earlier"] < 1:
            return None
        rating = value.get("last_rating")
        threads = tuple(
            (str(t[0]), str(t[1]), ThreadRef(str(t[2])))
            for t in value.get("last_threads") or ()
            if isinstance(t, list | tuple) and len(t) == 3 and all(isinstance(x, str) and x for x in t)
        )
        return cls(value["earlier"], rating if isinstance(rating, int) else None, threads)


@dataclass(frozen=True)
class PageView:
    url: str
    title: str | None = None
    referrer: str | None = None


@dataclass(frozen=True)
class ClientFacts:
    """What the widget server found out about the visitor's browser when the conversation started: from
    its ``User-Agent`` (browser, OS, device) and, with a GeoIP database, its address (country, city)."""

    browser: str | None = None
    os: str | None = None
    device: str | None = None
    #: the country's name as the GeoIP database gives it (in English); the root names it from ``country_code``
    country: str | None = None
    city: str | None = None
    #: ISO 3166-1 alpha-2 (``DE``), from the GeoIP database
    country_code: str | None = None

    @classmethod
    def stored(cls, value: object) -> ClientFacts:
        """As the store keeps them (a JSON object); anything else is no facts."""
        if not isinstance(value, dict):
            return cls()
        return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__ and isinstance(v, str) and v})


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (CONTRACT §7): its bytes are in the store; the widget gets them through
    a signed link the server makes, a team chat as a real file the adapter uploads."""

    id: str
    name: str
    size: int
    #: decided from the bytes, never from the name or the sender's word
    content_type: str

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    def stored(self) -> dict[str, str | int]:
        return {"id": self.id, "name": self.name, "size": self.size, "content_type": self.content_type}

    @classmethod
    def from_stored(cls, value: object) -> tuple[Attachment, ...]:
        """A message's files as the store keeps them (a JSON list); anything unreadable is left out."""
        if not isinstance(value, list):
            return ()
        found = []
        for item in value:
            if isinstance(item, dict) and all(k in item for k in ("id", "name", "size", "content_type")):
                found.append(cls(str(item["id"]), str(item["name"]), int(item["size"]), str(item["content_type"])))
        return tuple(found)


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: ConversationId
    seq: int
    author: Participant
    text: str
    created_at: datetime
    client_msg_id: str | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    #: which endpoint it came from (``widget``, ``slack``…): mirroring skips the origin
    origin: str = "widget"
    #: the team member's formatting: the sanitized HTML subset of CONTRACT §7 (``text`` is the same
    #: message as plain text); None for plain messages, and always for the visitor's
    html: str | None = None
    #: the files sent with it (a message may be files alone, with empty ``text``)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Conversation:
    id: ConversationId
    site_id: str
    topic: str | None
    status: Status
    visitor: Visitor
    created_at: datetime
    last_activity_at: datetime
    locale: str | None = None
    timezone: str | None = None
    client_address: str | None = None
    pages: tuple[PageView, ...] = ()
    claimed_by: str | None = None
    closed_at: datetime | None = None
    rating_score: int | None = None
    rating_comment: str | None = None
    kind: str = "chat"
    #: the browser's ``User-Agent`` at the start, as it came
    user_agent: str | None = None
    client: ClientFacts = ClientFacts()
    #: the language the bridge speaks to the visitor (``config.sites.LANGUAGES``)
    language: str = "en"
    #: when the automatic greeting went out (CONTRACT §10); None: not (yet)
    greeted_at: datetime | None = None
    #: the visitor's last message someone in the team has read (0: none yet), shown as "Seen"
    team_read_seq: int = 0
    #: the visitor has chatted on the site before (CONTRACT §8); None: a first chat, or not known
    returning: Returning | None = None
    #: the visitor's first message since the team last answered; None: nobody waits for an answer
    awaiting_reply_since: datetime | None = None

    @property
    def visitor_name(self) -> str:
        return self.visitor.name or ANONYMOUS

    @property
    def current_page(self) -> PageView | None:
        return self.pages[-1] if self.pages else None

    @property
    def state_label(self) -> str:
        """The state as people read it on the thread's root message."""
        if self.kind == "offline":
            return "Offline message"
        if self.rating_score is not None:
            comment = f": {self.rating_comment}" if self.rating_comment else ""
            return f"Rated {self.rating_score}/5{comment}"
        if self.status is Status.CLOSED:
            return "Closed"
        if self.claimed_by:
            return f"Claimed by {self.claimed_by}"
        return "Open"
